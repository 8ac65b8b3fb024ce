"""UnpaidPremiumWorkflow — one durable case per contract in recovery.

The legal timeline of article L113-3 of the Code des assurances (and its siblings, DOMAIN.md
§1.2) reads top to bottom in ``run``:

1. grace: friendly reminders (relances) at their offsets, then the formal notice (mise en
   demeure) on the earliest legal day;
2. notice_sent: the clock starts at the certified *sending* (deposit) instant, not at
   receipt; full payment → regularized;
3. suspended at 00:00 after the 30-day delay; full payment (arrears + instalments fallen due
   during the suspension + fees) → reinstated at noon the day after payment;
4. terminated at 00:00 after the 10-day delay; a remaining balance → litigation.

Handlers only change state (pure, synchronous); every side effect (letters, database)
happens in the main loop through activities. Dates come from ``models.calendar``.
"""



from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from models import calendar as cal
    from models import search_attributes as sa
    from models.letters import LetterContext
    from models.lre import choose_channel
    from models.payloads import (
        Cancel,
        CaseStatus,
        Channel,
        Deadline,
        DepositRecorded,
        HistoryEntry,
        Hold,
        Installment,
        LetterInfo,
        LetterKind,
        LreEvent,
        LreEventKind,
        Payment,
        Regime,
        Stage,
        UnpaidCase,
    )
    from models.policy import RecoveryPolicy
    from models.recovery import CaseSync, LitigationRequest, PaymentEntry, RecoveryState

ZERO = Decimal("0")
# Short database writes and the policy lookup run as local activities: one marker in the
# history instead of a server round trip per write (measured on the import benchmark).
_DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
_SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["LrePermanentError", "InvalidRecipient", "LetterRenderError"],
)
# How long a send may keep retrying inside one activity before the case shows a delivery
# problem to operators; the workflow then waits and tries again (same letter id: no double).
_SEND_WINDOW = timedelta(minutes=30)
_SEND_PAUSE = timedelta(minutes=15)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


@workflow.defn(name="UnpaidPremiumWorkflow")
class UnpaidPremiumWorkflow:
    @workflow.init
    def __init__(self, case: UnpaidCase, carried: RecoveryState | None = None) -> None:
        # The SDK applies type hints only when the payload count equals the parameter count,
        # so a start with the single contract argument arrives as plain JSON: validate here.
        self.s = RecoveryState.model_validate(carried) if carried else RecoveryState(case=UnpaidCase.model_validate(case))
        self._wake = False

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, case: UnpaidCase, carried: RecoveryState | None = None) -> CaseStatus:
        s = self.s
        case = s.case
        if s.policy is None:
            s.policy = await workflow.execute_local_activity(
                "load_policy", case.portfolio, result_type=RecoveryPolicy,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=_DB_RETRY,
            )
            s.case_ref = workflow.info().run_id[:8]
            s.clock_anchor = workflow.now()
            s.fees = s.policy.recovery_fee
            s.reminder_only = (
                case.unpaid_kind.value == "partial"
                and case.arrears < s.policy.partial_reminder_only_below
            )
            self._log(
                "opened",
                f"{case.unpaid_kind.value} unpaid, {len(case.installments)} instalment(s), "
                f"{_money(case.arrears)} {case.currency}, regime {case.regime.value}",
            )
            if s.reminder_only:
                self._log(
                    "reminder_only",
                    f"partial unpaid below {_money(s.policy.partial_reminder_only_below)}: "
                    "reminders only, no formal notice (portfolio policy)",
                )
        while not s.closed:
            # Reset before any await: a message arriving during the activities below must
            # still wake the wait (a reset after them would lose it).
            self._wake = False
            await self._flush()
            while s.pending_acknowledgements and not s.closed and workflow.patched("partial-payment-acknowledgement"):
                # A partial payment neither stops nor reinstates: it is acknowledged (DOMAIN §1.1).
                n = len([lt for lt in s.letters if lt.kind is LetterKind.PAYMENT_ACKNOWLEDGEMENT]) + 1
                await self._send(LetterKind.PAYMENT_ACKNOWLEDGEMENT, self._reminder_channel(), attempt=n)
                s.pending_acknowledgements.pop(0)
            if s.closed:
                break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(args=[case, s])
            deadline = self._next_deadline()
            timeout = None
            if deadline is not None:
                timeout = max(timedelta(0), (deadline.at - self._now()) / self._k)
            try:
                await workflow.wait_condition(
                    lambda: self._wake or s.closed or workflow.info().is_continue_as_new_suggested(),
                    timeout=timeout,
                )
            except TimeoutError:
                await self._on_deadline(deadline)  # type: ignore[arg-type]
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status()

    def _next_deadline(self) -> Deadline | None:
        s, p = self.s, self.s.policy
        assert p is not None
        if s.stage is Stage.ON_HOLD:
            return Deadline(kind="hold_ends", at=s.hold_until) if s.hold_until else None
        if s.stage is Stage.GRACE:
            if self._notice_awaiting_deposit():
                return None  # paper: the mailroom records the deposit
            candidates: list[Deadline] = []
            if s.reminders_sent < len(p.reminders):
                offset = p.reminders[s.reminders_sent].offset_days
                day = s.case.first_due_date + timedelta(days=offset)
                candidates.append(Deadline(kind="reminder", at=cal.paris_instant(day, self._send_time())))
            if not s.reminder_only and not s.notice_blocked:
                candidates.append(Deadline(kind="formal_notice", at=self._earliest_notice_at()))
            return min(candidates, key=lambda d: d.at) if candidates else None
        if s.stage is Stage.NOTICE_SENT:
            if s.suspension_at:
                return Deadline(kind="suspension", at=s.suspension_at)
            if s.termination_at:
                return Deadline(kind="termination", at=s.termination_at)
            return None  # compulsory membership: no suspension, no termination
        if s.stage is Stage.SUSPENDED:
            if s.reinstatement_at:
                return Deadline(kind="reinstatement", at=s.reinstatement_at)
            if s.termination_at:
                return Deadline(kind="termination", at=s.termination_at)
        return None

    async def _on_deadline(self, deadline: Deadline) -> None:
        s = self.s
        if deadline.kind == "reminder":
            if not s.reminder_only and self._now() >= self._earliest_notice_at():
                # Opened late: the notice is already due, a friendly reminder now would only confuse.
                self._log("reminder_skipped", f"reminder #{s.reminders_sent + 1} skipped: the formal notice is due")
            else:
                await self._send(LetterKind.REMINDER, self._reminder_channel(), attempt=s.reminders_sent + 1)
            s.reminders_sent += 1
        elif deadline.kind == "formal_notice":
            await self._send_formal_notice()
        elif deadline.kind == "suspension":
            s.stage = Stage.SUSPENDED
            self._log("suspended", f"cover suspended at {self._fmt(s.suspension_at)} (L113-3 al. 2)")
            if s.policy and s.policy.send_suspension_letter:
                await self._send(LetterKind.SUSPENSION_NOTICE, self._reminder_channel())
        elif deadline.kind == "reinstatement":
            s.stage = Stage.REINSTATED
            s.closed = True
            self._log("reinstated", f"cover reinstated at {self._fmt(s.reinstatement_at)} (remise en vigueur)")
            await self._send(LetterKind.REINSTATEMENT, self._reminder_channel())
        elif deadline.kind == "termination":
            await self._terminate()
        elif deadline.kind == "hold_ends":
            self._resume("hold period ended")

    async def _send_formal_notice(self) -> None:
        s, p = self.s, self.s.policy
        assert p is not None
        s.notice_attempt += 1
        channel = Channel(s.notice_channel_override) if s.notice_channel_override else self._notice_channel()
        # Dates stated in the letter assume sending today; the workflow later acts on the
        # later of these and the dates computed from the certified deposit (never early).
        planned = cal.notice_schedule(self._now(), self._rules())
        s.stated_suspension_at, s.stated_termination_at = planned.suspension_at, planned.termination_at
        # Known before the send, so a bounce arriving during a retried send invalidates it.
        s.notice_letter_id = self._letter_id(LetterKind.FORMAL_NOTICE, s.notice_attempt)
        deposit = await self._send(LetterKind.FORMAL_NOTICE, channel, attempt=s.notice_attempt)
        if deposit is None:
            s.notice_letter_id = None
            return
        if deposit.deposited_at is not None and s.notice_letter_id == deposit.letter_id:
            self._notice_deposited(self._virtual(deposit.deposited_at))

    def _notice_deposited(self, at: datetime) -> None:
        """The legal clock starts at the certified sending instant (DOMAIN.md §1.1)."""
        s = self.s
        s.notice_sent_at = at
        if s.closed:
            # Settled or cancelled while the letter was being deposited: no deadline follows.
            self._log("notice_sent", f"formal notice deposited {self._fmt(at)} after the case closed ({s.stage.value}): no effect")
            return
        sched = cal.notice_schedule(at, self._rules())
        s.suspension_at = _later(sched.suspension_at, s.stated_suspension_at)
        s.termination_at = _later(sched.termination_at, s.stated_termination_at)
        self._enter(Stage.NOTICE_SENT)
        self._log(
            "notice_sent",
            f"formal notice deposited {self._fmt(at)}; suspension {self._fmt(s.suspension_at)}, "
            f"termination {self._fmt(s.termination_at)}",
        )

    async def _terminate(self) -> None:
        s, p = self.s, self.s.policy
        assert p is not None
        s.stage = Stage.TERMINATED
        if s.case.regime is Regime.VIE:
            outcome = "reduction" if s.case.has_surrender_value else "termination"
            self._log("terminated", f"L132-20: contract {outcome} at {self._fmt(s.termination_at)}; no action for payment")
            if not p.notice_announces_termination:
                await self._send(LetterKind.TERMINATION, self._notice_channel())
            s.closed = True
            return
        self._log("terminated", f"contract terminated at {self._fmt(s.termination_at)} (résiliation)")
        if not p.notice_announces_termination:
            await self._send(LetterKind.TERMINATION, self._notice_channel())
        if self._balance() > ZERO:
            ctx = self._letter_context(LetterKind.LITIGATION_SUMMARY, Channel.EMAIL, attempt=1)
            s.litigation_ref = await workflow.execute_activity(
                "hand_over_to_litigation",
                LitigationRequest(workflow_id=workflow.info().workflow_id, status=self._status(), case=s.case, summary=ctx),
                result_type=str, start_to_close_timeout=timedelta(minutes=2), retry_policy=_DB_RETRY,
            )
            s.stage = Stage.LITIGATION
            self._log("litigation", f"handed to litigation (contentieux), balance {_money(self._balance())}, dossier {s.litigation_ref}")
        s.closed = True

    # ------------------------------------------------------------------ letters
    async def _send(self, kind: LetterKind, channel: Channel, *, attempt: int = 1) -> DepositRecorded | None:
        """Send a letter; retried under a stable letter id so a retry never sends twice."""
        s = self.s
        ctx = self._letter_context(kind, channel, attempt)
        info = LetterInfo(letter_id=ctx.letter_id, kind=kind, channel=channel, status="sending", attempt=attempt)
        s.letters.append(info)
        while True:
            try:
                deposit: DepositRecorded = await workflow.execute_activity(
                    "send_letter", ctx, result_type=DepositRecorded,
                    start_to_close_timeout=timedelta(minutes=2), heartbeat_timeout=timedelta(seconds=15),
                    schedule_to_close_timeout=_SEND_WINDOW, retry_policy=_SEND_RETRY,
                )
                break
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    info.status = "failed"
                    self._log("letter_failed", f"{kind.value} #{attempt} by {channel.value}: {cause.message}")
                    if kind is LetterKind.FORMAL_NOTICE and channel is not Channel.PAPER:
                        s.notice_channel_override = Channel.PAPER.value
                        self._log("channel_fallback", "formal notice will be re-sent by paper registered letter")
                    elif kind is LetterKind.FORMAL_NOTICE:
                        # Even paper failed (e.g. the letter cannot be produced from this data):
                        # stop trying and ask a person instead of looping.
                        s.notice_blocked = f"formal notice cannot be sent: {cause.message}; fix the case, then signal retry_delivery"
                        s.delivery_problem = s.notice_blocked
                        self._log("notice_blocked", s.notice_blocked)
                    return None
                s.delivery_problem = f"{channel.value} provider unavailable since {self._fmt(self._now())}; retrying"
                self._log("delivery_problem", s.delivery_problem)
                await self._flush()
                try:
                    await workflow.wait_condition(lambda: s.closed, timeout=_SEND_PAUSE)
                except TimeoutError:
                    pass
                if s.closed:
                    # Cancelled or settled meanwhile: stop insisting (a retry would reuse the id anyway).
                    info.status, s.delivery_problem = "abandoned", None
                    self._log("letter_abandoned", f"{kind.value} #{attempt}: case closed while the provider was down")
                    return None
        if s.delivery_problem:
            self._log("delivery_restored", f"{kind.value} delivered after provider outage")
            s.delivery_problem = None
        if info.status in ("sending", "abandoned"):
            # An outcome (accepted, bounced…) may already have arrived during a retried send.
            info.status = deposit.status
        info.sha256 = deposit.sha256
        info.provider_id = deposit.provider_id
        info.channel = deposit.channel
        info.sent_at = self._virtual(deposit.deposited_at) if deposit.deposited_at else None
        if deposit.proof_url:
            info.proofs["deposit"] = deposit.proof_url
        self._log("letter_sent", f"{kind.value} #{attempt} by {deposit.channel.value}: {deposit.status}")
        return deposit

    def _letter_context(self, kind: LetterKind, channel: Channel, attempt: int) -> LetterContext:
        s, case = self.s, self.s.case
        collective = case.regime in (Regime.MUTUELLE_COLLECTIVE, Regime.PREVOYANCE_COLLECTIVE)
        recipient = case.employer if (collective and case.employer) else case.policyholder
        return LetterContext(
            letter_id=self._letter_id(kind, attempt),
            kind=kind, channel=channel, contract_id=case.contract_id, portfolio=case.portfolio,
            regime=case.regime, unpaid_kind=case.unpaid_kind, currency=case.currency,
            recipient=recipient, policyholder_name=case.policyholder.name,
            letter_date=cal.paris_date(self._now()), installments=case.installments,
            first_due_date=case.first_due_date, arrears=case.arrears, fees=s.fees,
            due_during_suspension=s.due_during_suspension, amount_paid=s.amount_paid,
            amount_due=self._amount_due(), balance=self._balance(),
            period_premium=case.period_premium, paid_on_period=case.paid_on_period,
            suspension_at=s.suspension_at or s.stated_suspension_at,
            termination_at=s.termination_at or s.stated_termination_at,
            reinstatement_at=s.reinstatement_at, notice_sent_at=s.notice_sent_at,
            announce_termination=bool(s.policy and s.policy.notice_announces_termination),
            compulsory_membership=case.compulsory_membership,
            life_outcome=("reduction" if case.has_surrender_value else "termination") if case.regime is Regime.VIE else None,
            payment_reference=case.contract_id, demo_clock=self._k > 1, attempt=attempt,
        )

    def _letter_id(self, kind: LetterKind, attempt: int) -> str:
        """Stable per (case, kind, attempt): the provider reference that prevents doubles."""
        return f"{self.s.case.contract_id}.{self.s.case_ref}.{kind.value}.{attempt}"

    def _notice_channel(self) -> Channel:
        """Registered channel for legal letters: LRE needs an e-mail and consent (CPCE L100)."""
        p = self.s.policy
        assert p is not None
        return choose_channel(self._recipient(), p.notice_channel)

    def _reminder_channel(self) -> Channel:
        """Channel for information letters (reminders, confirmations): ERE, else paper."""
        p = self.s.policy
        assert p is not None
        wanted = p.reminders[min(self.s.reminders_sent, len(p.reminders) - 1)].channel if p.reminders else Channel.ERE
        return choose_channel(self._recipient(), wanted)

    def _recipient(self):
        case = self.s.case
        if case.regime in (Regime.MUTUELLE_COLLECTIVE, Regime.PREVOYANCE_COLLECTIVE) and case.employer:
            return case.employer
        return case.policyholder

    def _notice_awaiting_deposit(self) -> bool:
        s = self.s
        return any(
            lt.letter_id == s.notice_letter_id and lt.status == "awaiting_deposit" for lt in s.letters
        )

    # ------------------------------------------------------------------ messages
    @workflow.update
    async def register_payment(self, payment: Payment) -> CaseStatus:
        self._apply_payment(payment)
        return self._status()

    @register_payment.validator
    def _validate_payment(self, payment: Payment) -> None:
        problem = self._payment_problem(payment)
        if problem:
            raise ValueError(problem)

    @workflow.signal
    def payment_received(self, payload: dict[str, Any]) -> None:
        try:
            payment = Payment.model_validate(payload)
        except ValidationError as exc:
            self._reject("payment_received", _errors(exc))
            return
        problem = self._payment_problem(payment)
        if problem:
            self._reject("payment_received", problem)
            return
        self._apply_payment(payment)

    @workflow.signal
    def lre_event(self, payload: dict[str, Any]) -> None:
        try:
            event = LreEvent.model_validate(payload)
        except ValidationError as exc:
            self._reject("lre_event", _errors(exc))
            return
        letter = next((lt for lt in self.s.letters if lt.letter_id == event.letter_id), None)
        if letter is None:
            self._reject("lre_event", f"unknown letter_id {event.letter_id!r}")
            return
        self._apply_lre_event(letter, event)

    @workflow.signal
    def installment_due(self, payload: dict[str, Any]) -> None:
        try:
            inst = Installment.model_validate(payload)
        except ValidationError as exc:
            self._reject("installment_due", _errors(exc))
            return
        s = self.s
        stage = s.held_from_stage if s.stage is Stage.ON_HOLD else s.stage
        if s.closed:
            self._reject("installment_due", f"case is closed ({s.stage.value})")
        elif stage is Stage.GRACE and s.notice_sent_at is None:
            s.case.installments.append(inst)
            self._log("installment_due", f"{_money(inst.amount)} due {inst.due_date} added to the arrears")
        elif stage is Stage.SUSPENDED:
            s.due_during_suspension += inst.amount
            self._log("installment_due", f"{_money(inst.amount)} due {inst.due_date} during suspension: required for reinstatement")
        else:
            s.not_covered_by_notice += inst.amount
            self._log("installment_due", f"{_money(inst.amount)} due {inst.due_date}: not covered by the notice already sent")
        self._wake = True

    @workflow.signal
    def hold(self, payload: dict[str, Any]) -> None:
        try:
            h = Hold.model_validate(payload)
        except ValidationError as exc:
            self._reject("hold", _errors(exc))
            return
        s = self.s
        if s.closed:
            self._reject("hold", f"case is closed ({s.stage.value})")
            return
        if s.stage is not Stage.ON_HOLD:
            s.held_from_stage, s.stage, s.hold_started_at = s.stage, Stage.ON_HOLD, self._now()
        s.hold_reason, s.hold_until = h.reason, h.until
        self._log("hold", f"on hold: {h.reason}" + (f" until {self._fmt(h.until)}" if h.until else ""))
        self._wake = True

    @workflow.signal
    def resume(self) -> None:
        if self.s.stage is not Stage.ON_HOLD:
            self._reject("resume", f"case is not on hold ({self.s.stage.value})")
            return
        self._resume("resumed by operator")

    @workflow.signal
    def retry_delivery(self) -> None:
        """Operator: try the blocked formal notice again (after fixing the data or provider)."""
        s = self.s
        if not s.notice_blocked:
            self._reject("retry_delivery", "no blocked letter on this case")
            return
        s.notice_blocked = s.delivery_problem = None
        s.notice_channel_override = None
        self._log("retry_delivery", "operator asked to send the formal notice again")
        self._wake = True

    @workflow.signal
    def cancel(self, payload: dict[str, Any]) -> None:
        try:
            c = Cancel.model_validate(payload)
        except ValidationError as exc:
            self._reject("cancel", _errors(exc))
            return
        if self.s.closed:
            self._reject("cancel", f"case is closed ({self.s.stage.value})")
            return
        self.s.stage, self.s.closed = Stage.CANCELLED, True
        self._log("cancelled", c.reason)
        self._wake = True

    @workflow.query
    def status(self) -> CaseStatus:
        return self._status()

    # ------------------------------------------------------------------ state changes
    def _payment_problem(self, p: Payment) -> str | None:
        if self.s.closed:
            return f"case {self.s.case.contract_id} is closed ({self.s.stage.value}); payment not applied"
        if p.amount <= ZERO:
            return f"amount must be positive, got {p.amount}"
        if p.received_at.tzinfo is None:
            return "received_at must carry a UTC offset (ISO-8601, e.g. 2026-11-22T10:00:00+01:00)"
        if p.currency and p.currency.upper() != self.s.case.currency:
            return f"currency {p.currency} does not match the case currency {self.s.case.currency}"
        return None

    def _apply_payment(self, p: Payment) -> None:
        s = self.s
        if p.payment_id in s.applied_payment_ids:
            self._log("payment_duplicate", f"payment {p.payment_id} already applied: no-op")
            return
        s.applied_payment_ids.append(p.payment_id)
        s.amount_paid += p.amount
        s.pending_payments.append(p)
        self._wake = True
        balance = self._balance()
        if balance > ZERO:
            self._log("payment_partial", f"{_money(p.amount)} received ({p.payment_id}); balance {_money(balance)}: the timeline goes on")
            if s.policy and s.policy.acknowledge_partial_payments:
                s.pending_acknowledgements.append(p.payment_id)
            return
        stage = s.held_from_stage if s.stage is Stage.ON_HOLD else s.stage
        self._log("payment_full", f"{_money(p.amount)} received ({p.payment_id}); nothing left due")
        if stage is Stage.TERMINATED:
            # Paid while the termination is being carried out: the contract stays terminated,
            # the balance is settled so nothing goes to litigation.
            self._log("payment_after_termination", "balance settled; the termination stands")
        elif stage is Stage.SUSPENDED:
            paid_at = min(self._virtual(p.received_at), self._now()) if self._k == 1 else self._now()
            s.reinstatement_at = cal.reinstatement_at(paid_at)
            s.stage, s.held_from_stage, s.hold_reason, s.hold_until = Stage.SUSPENDED, None, None, None
            self._log("reinstatement_scheduled", f"cover resumes at {self._fmt(s.reinstatement_at)} (noon the day after payment)")
        else:
            s.stage, s.closed = Stage.REGULARIZED, True
            self._log("regularized", "paid before suspension: procedure stopped")

    def _apply_lre_event(self, letter: LetterInfo, e: LreEvent) -> None:
        s = self.s
        if e.proof_url:
            letter.proofs[e.event.value] = e.proof_url
        if e.event is LreEventKind.DEPOSITED:
            if letter.status == "awaiting_deposit":
                letter.status, letter.sent_at = "deposited", self._virtual(e.occurred_at)
                tracking = f" (tracking {e.tracking_number})" if e.tracking_number else ""
                self._log("letter_deposited", f"{letter.kind.value} deposited{tracking}")
                if letter.letter_id == s.notice_letter_id and s.notice_sent_at is None and not s.closed:
                    self._notice_deposited(self._virtual(e.occurred_at))
            self._wake = True
            return
        if letter.status == e.event.value:
            return  # duplicate delivery of the same provider event
        letter.status = e.event.value
        if e.event is LreEventKind.BOUNCED:
            self._log("letter_bounced", f"{letter.kind.value} could not be delivered")
            if letter.letter_id == s.notice_letter_id and not s.closed and s.stage in (Stage.NOTICE_SENT, Stage.GRACE, Stage.SUSPENDED, Stage.ON_HOLD):
                # Not a valid notice: re-send through another channel, the clock restarts.
                s.notice_sent_at = s.suspension_at = s.termination_at = None
                s.notice_letter_id = None
                s.notice_channel_override = (s.policy.fallback_channel if s.policy else Channel.PAPER).value
                if s.stage is Stage.ON_HOLD:
                    s.held_from_stage = Stage.GRACE
                else:
                    s.stage = Stage.GRACE
                self._log("notice_invalidated", f"bounced notice is void; re-sending by {s.notice_channel_override}, clock restarts")
        else:
            self._log(f"letter_{e.event.value}", f"{letter.kind.value}: {e.event.value} (does not change the timeline)")
        self._wake = True

    def _enter(self, stage: Stage) -> None:
        """Move to ``stage`` after an await: a case closed or put on hold meanwhile keeps
        that state (a hold resumes into the new stage)."""
        s = self.s
        if s.closed:
            return
        if s.stage is Stage.ON_HOLD:
            s.held_from_stage = stage
        else:
            s.stage = stage

    def _resume(self, why: str) -> None:
        s = self.s
        assert s.hold_started_at is not None and s.held_from_stage is not None
        held_for = self._now() - s.hold_started_at
        # A hold freezes the legal clock: pending deadlines move by the held time, rounded up
        # to the next Paris midnight (never early).
        def moved(at: datetime | None) -> datetime | None:
            if at is None or at <= s.hold_started_at:  # type: ignore[operator]
                return at
            shifted = at + held_for
            local = shifted.astimezone(cal.PARIS)
            if local.time() != datetime.min.time():
                return cal.start_of_day_after(local.date())
            return shifted
        if held_for > timedelta(0):
            s.suspension_at, s.termination_at = moved(s.suspension_at), moved(s.termination_at)
        s.stage, s.held_from_stage = s.held_from_stage, None
        s.hold_reason = s.hold_until = s.hold_started_at = None
        self._log("resumed", f"{why}; suspension {self._fmt(s.suspension_at)}, termination {self._fmt(s.termination_at)}")
        self._wake = True

    # ------------------------------------------------------------------ amounts, clock
    def _amount_due(self) -> Decimal:
        s = self.s
        return cal.amount_required(s.case.arrears, s.due_during_suspension, s.fees)

    def _balance(self) -> Decimal:
        return max(ZERO, self._amount_due() - self.s.amount_paid)

    @property
    def _k(self) -> float:
        return self.s.policy.clock_compression if self.s.policy else 1.0

    def _now(self) -> datetime:
        """Legal time: real workflow time, or the compressed demo clock."""
        return self._virtual(workflow.now())

    def _virtual(self, real: datetime) -> datetime:
        anchor = self.s.clock_anchor
        if self._k == 1 or anchor is None:
            return real
        return anchor + (real - anchor) * self._k

    def _send_time(self) -> time:
        return time(self.s.policy.send_hour if self.s.policy else 9, 0)

    def _earliest_notice_at(self) -> datetime:
        """The formal notice goes at the send hour of the day after the grace expired."""
        day = cal.earliest_notice_date(self.s.case.first_due_date, self._rules())
        return cal.paris_instant(day, self._send_time())

    def _rules(self) -> cal.DelayRules:
        assert self.s.policy is not None
        return self.s.policy.delay_rules(self.s.case.regime, compulsory_membership=self.s.case.compulsory_membership)

    # ------------------------------------------------------------------ visibility
    def _log(self, kind: str, detail: str) -> None:
        self.s.history.append(HistoryEntry(at=self._now(), kind=kind, detail=detail))

    def _reject(self, message: str, reason: str) -> None:
        self._log("rejected", f"{message}: {reason}")
        self._wake = True

    def _fmt(self, at: datetime | None) -> str:
        return at.astimezone(cal.PARIS).strftime("%Y-%m-%d %H:%M") if at else "—"

    def _status(self) -> CaseStatus:
        s = self.s
        deadline = None if s.closed or s.policy is None else self._next_deadline()
        return CaseStatus(
            contract_id=s.case.contract_id, stage=s.stage, unpaid_kind=s.case.unpaid_kind,
            regime=s.case.regime, portfolio=s.case.portfolio, currency=s.case.currency,
            amount_due=self._amount_due(), amount_paid=s.amount_paid, balance=self._balance(),
            notice_sent_at=s.notice_sent_at, suspension_at=s.suspension_at,
            termination_at=s.termination_at, reinstatement_at=s.reinstatement_at,
            next_deadline=deadline, letters=[lt.model_copy() for lt in s.letters],
            history=list(s.history), payment_ids=list(s.applied_payment_ids), held_from_stage=s.held_from_stage, hold_reason=s.hold_reason,
            compressed_clock=self._k, closed=s.closed,
        )

    async def _flush(self) -> None:
        """Publish search attributes and details; write new payments and history to the DB."""
        s = self.s
        status = self._status()
        next_at = status.next_deadline.at if status.next_deadline else None
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CONTRACT_ID.value_set(s.case.contract_id),
            sa.PORTFOLIO.value_set(s.case.portfolio),
            sa.RECOVERY_STAGE.value_set(s.stage.value),
            sa.UNPAID_KIND.value_set(s.case.unpaid_kind.value),
            sa.AMOUNT_DUE.value_set(float(self._balance())),
            sa.NEXT_DEADLINE.value_set(next_at) if next_at else sa.NEXT_DEADLINE.value_unset(),
        ]
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details(status))
        while s.pending_payments:
            p = s.pending_payments[0]
            await workflow.execute_local_activity(
                "record_payment", PaymentEntry(contract_id=s.case.contract_id, currency=s.case.currency, payment=p),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=_DB_RETRY,
            )
            s.pending_payments.pop(0)
        if s.synced_history < len(s.history) or s.synced_history == 0:
            upto = len(s.history)
            status_light = status.model_copy(update={"history": []})
            await workflow.execute_local_activity(
                "sync_case",
                CaseSync(
                    workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id,
                    status=status_light, first_seq=s.synced_history, events=s.history[s.synced_history:upto],
                ),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=_DB_RETRY,
            )
            s.synced_history = upto

    def _details(self, st: CaseStatus) -> str:
        s = self.s
        lines = []
        if self._k > 1:
            lines.append(f"> ⚠ **DEMO — compressed clock ×{self._k:g}**: dates are simulated, no legal value.")
        lines.append(f"### Contract `{st.contract_id}` — {st.stage.value.replace('_', ' ')}")
        lines.append(
            f"**{st.unpaid_kind.value} unpaid** · regime `{st.regime.value}` · portfolio `{st.portfolio}`  "
        )
        lines.append(
            f"**Balance {_money(st.balance)} {st.currency}** (due {_money(st.amount_due)}, paid {_money(st.amount_paid)})"
        )
        if st.notice_sent_at:
            lines.append(f"- Notice sent: {self._fmt(st.notice_sent_at)}")
        if st.suspension_at:
            lines.append(f"- Suspension: {self._fmt(st.suspension_at)}")
        if st.termination_at:
            lines.append(f"- Termination: {self._fmt(st.termination_at)}")
        if st.reinstatement_at:
            lines.append(f"- Reinstatement: {self._fmt(st.reinstatement_at)}")
        if st.next_deadline:
            lines.append(f"- **Next: {st.next_deadline.kind.replace('_', ' ')} at {self._fmt(st.next_deadline.at)} (Paris)**")
        if s.hold_reason:
            lines.append(f"- On hold: {s.hold_reason}")
        if s.delivery_problem:
            lines.append(f"- ⚠ Delivery problem: {s.delivery_problem}")
        if st.letters:
            lines.append("")
            lines.append("| letter | channel | status |")
            lines.append("|---|---|---|")
            for lt in st.letters[-5:]:
                lines.append(f"| {lt.kind.value} #{lt.attempt} | {lt.channel.value} | {lt.status} |")
        if s.history:
            last = s.history[-1]
            lines.append("")
            lines.append(f"_Last event: {last.kind} — {last.detail}_")
        return "\n".join(lines)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
    )
