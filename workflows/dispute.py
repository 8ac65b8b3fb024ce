"""DisputeWorkflow — one complaint (réclamation), id ``dispute-{dispute_id}``.

The process of DOMAIN.md §2 (ACPR recommendation 2022-R-01):

1. received → triaged (when no category was given) → acknowledged within 10 jours
   ouvrables → answered by min(received + 60 days, received + 2 months).
2. Each clock is on track, at risk (past the first alert threshold), or breached; the
   handler is alerted at each threshold (75 %, 90 % by default), the supervisor at breach.
3. Complex or sensitive cases go to the ethics committee, whose opinion the answer waits for.
4. The answer (upheld / partially upheld / rejected) produces the answer letter; a
   rejection names the mediator. The member accepts (closed) or contests.
5. After a rejection, a contested answer or no answer in time: mediation, as a child
   ``MediationWorkflow`` with its own 90-day clock (L612-2, R612-5).
6. A dispute about premiums on a contract in recovery holds ``unpaid-{contract_id}``
   until the dispute closes (configurable per category).
7. After closure the member may give a satisfaction score (1–5) for the KPIs.

All dates come from ``models.calendar`` (the one legal calendar); all I/O is in the
``dispute_*`` activities (activities/disputes.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models.calendar import end_of_day, paris_date
    from models.disputes import (
        CATEGORY_LABELS_FR,
        Acknowledge,
        AlertInput,
        CategoryCorrection,
        ClockKind,
        Close,
        CorrectionInput,
        CustomerMessage,
        CustomerReply,
        Decision,
        Dispute,
        DisputeCarryOver,
        DisputeCategory,
        DisputeLetterRequest,
        DisputeStage,
        DisputeStatus,
        DisputeSync,
        Escalation,
        EscalationLevel,
        EthicsOpinion,
        EthicsReferral,
        Handler,
        HistoryEntry,
        InformationRequest,
        LetterRef,
        MediationInput,
        MediationOutcome,
        MediationReferral,
        MediationResult,
        MediationState,
        Outcome,
        RecoveryLink,
        Satisfaction,
        SatisfactionInput,
        SlaClock,
        TriageRequest,
        TriageResult,
        clock_state,
        dispute_clocks,
        mediation_last_day,
        mediation_possible_until,
        overall_sla,
        pause_clock,
        threshold_instant,
        unpause_clock,
    )
    from models.payloads import Hold
    from workflows.mediation import MediationWorkflow

_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=2)),
)
# A letter that cannot be rendered fails the update that asked for it (nothing changes).
_LETTER = dict(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30)),
)
# Timers fire at or after their instant; a second of slack keeps "now >= instant" true.
_SLACK = timedelta(seconds=1)

_M = TypeVar("_M")


def _as(model: type[_M], value: Any) -> _M:
    """Messages are typed, but a payload sent by name (Temporal UI, another system) may not
    match: reject it with the field and the reason instead of an opaque decoding error."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)  # type: ignore[attr-defined]
    except ValidationError as err:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"invalid {model.__name__}: {reasons}") from None


_OPEN_FOR_ANSWER = {
    DisputeStage.RECEIVED,
    DisputeStage.ACKNOWLEDGED,
    DisputeStage.IN_PROGRESS,
    DisputeStage.AWAITING_INFORMATION,
    DisputeStage.CONTESTED,
}


@workflow.defn(name="DisputeWorkflow")
class DisputeWorkflow:
    @workflow.init
    def __init__(self, dispute: Dispute) -> None:
        self._dispute = dispute
        self._cfg = dispute.config
        carried = dispute.carry_over
        self._status = (
            carried.status
            if carried
            else DisputeStatus(
                dispute_id=dispute.dispute_id,
                stage=DisputeStage.RECEIVED,
                category=dispute.category or DisputeCategory.OTHER,
                category_source="given" if dispute.category else "pending_triage",
                member=dispute.member,
                contract_id=dispute.contract_id,
                received_at=dispute.received_at,
                subject=dispute.subject,
                channel=dispute.channel,
                clocks=dispute_clocks(dispute.received_at, dispute.config),
                mediation_possible_until=mediation_possible_until(
                    dispute.received_at, dispute.config.mediation_window_months
                ),
            )
        )
        self._dirty = False
        self._synced = carried.synced if carried else 0
        self._runs = carried.runs if carried else 1
        self._published: tuple | None = None
        self._stage_before_info = carried.stage_before_info if carried else DisputeStage.ACKNOWLEDGED
        self._mediation_handle: workflow.ChildWorkflowHandle | None = None
        self._mediation_task: asyncio.Task | None = None
        self._flush_lock = asyncio.Lock()
        self._dirty_read_model = True
        if carried:
            return
        # Recorded here, not in run(): an update delivered with the first task runs before.
        self._record("received", f"{dispute.channel}: {dispute.subject}")
        for clock in self._status.clocks:
            self._record(
                f"clock_{clock.kind.value}",
                f"dû au plus tard le {clock.last_day.isoformat()} à 24:00 (Paris)",
            )

    # ================================================================== the process
    @workflow.run
    async def run(self, dispute: Dispute) -> DisputeStatus:
        s = self._status
        if dispute.carry_over is not None:
            self._record("continued_as_new", f"run {self._runs}")
        elif dispute.category is None:
            await self._triage()
        if (dispute.complex or dispute.sensitive) and dispute.carry_over is None:
            flags = " et ".join(f for f, on in (("complexe", dispute.complex), ("sensible", dispute.sensitive)) if on)
            await self._refer_to_ethics(f"réclamation signalée {flags}")
        await self._apply_recovery_rule()

        while s.stage is not DisputeStage.CLOSED:
            await self._check_clocks()
            await self._flush()
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
            if self._should_continue_as_new() and workflow.all_handlers_finished():
                workflow.continue_as_new(
                    self._dispute.model_copy(
                        update={
                            "carry_over": DisputeCarryOver(
                                status=self._status,
                                synced=self._synced,
                                stage_before_info=self._stage_before_info,
                                runs=self._runs + 1,
                            )
                        }
                    )
                )
            wake = self._next_wakeup()
            timeout = None if wake is None else max(wake - workflow.now(), timedelta(0)) + _SLACK
            try:
                await workflow.wait_condition(lambda: self._dirty or s.stage is DisputeStage.CLOSED, timeout=timeout)
            except TimeoutError:
                pass
            self._dirty = False

        # Settled: the recovery case resumes, then the member may rate the handling.
        await self._apply_recovery_rule()
        await self._check_clocks()
        await self._flush()
        if s.satisfaction is None and self._cfg.satisfaction_window_days > 0:
            try:
                await workflow.wait_condition(
                    lambda: s.satisfaction is not None,
                    timeout=timedelta(days=self._cfg.satisfaction_window_days),
                )
            except TimeoutError:
                self._record("satisfaction_window_closed", "aucune note de satisfaction reçue")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return self._snapshot()

    # ================================================================== messages
    @workflow.update
    async def acknowledge(self, ack: Acknowledge | dict[str, Any]) -> DisputeStatus:
        ack = _as(Acknowledge, ack)
        s = self._status
        ref = await self._letter("dispute_acknowledgement")
        self._complete(ClockKind.ACKNOWLEDGEMENT)
        s.stage = DisputeStage.IN_PROGRESS if s.handler else DisputeStage.ACKNOWLEDGED
        self._record("acknowledged", (ack.note or "") + (f" lettre {ref.letter_id}" if ref else ""))
        return self._changed()

    @acknowledge.validator
    def _validate_acknowledge(self, ack: Acknowledge | dict[str, Any]) -> None:
        ack = _as(Acknowledge, ack)
        self._require_open()
        if self._clock(ClockKind.ACKNOWLEDGEMENT).completed_at is not None:
            raise ValueError(
                f"already acknowledged at {self._clock(ClockKind.ACKNOWLEDGEMENT).completed_at.isoformat()}"
            )

    @workflow.update
    def assign(self, handler: Handler | dict[str, Any]) -> DisputeStatus:
        handler = _as(Handler, handler)
        s = self._status
        previous = s.handler.name if s.handler else None
        s.handler = handler
        if s.stage is DisputeStage.ACKNOWLEDGED:
            s.stage = DisputeStage.IN_PROGRESS
        self._record("assigned", f"{previous} → {handler.name}" if previous else handler.name)
        return self._changed()

    @assign.validator
    def _validate_assign(self, handler: Handler | dict[str, Any]) -> None:
        handler = _as(Handler, handler)
        self._require_open()
        if self._status.handler and self._status.handler.name == handler.name:
            raise ValueError(f"already assigned to {handler.name}")

    @workflow.update
    def customer_message(self, message: CustomerMessage | dict[str, Any]) -> DisputeStatus:
        message = _as(CustomerMessage, message)
        s = self._status
        detail = message.text[:300]
        if message.attachments:
            detail += f" (pièces jointes : {', '.join(message.attachments)})"
        self._record("customer_message", detail)
        if s.stage is DisputeStage.AWAITING_INFORMATION and message.provides_information:
            for clock in s.clocks:
                if clock.paused_since is not None:
                    unpause_clock(clock, workflow.now())
                    self._record(f"clock_{clock.kind.value}_resumed", f"nouvelle échéance {clock.due_at.isoformat()}")
            s.stage = self._stage_before_info
            self._record("information_received", "")
        return self._changed()

    @customer_message.validator
    def _validate_customer_message(self, message: CustomerMessage | dict[str, Any]) -> None:
        message = _as(CustomerMessage, message)
        self._require_open()

    @workflow.update
    def request_information(self, request: InformationRequest | dict[str, Any]) -> DisputeStatus:
        request = _as(InformationRequest, request)
        s = self._status
        self._stage_before_info = s.stage
        s.stage = DisputeStage.AWAITING_INFORMATION
        self._record("information_requested", request.text[:300])
        if self._cfg.pause_while_awaiting_information:
            clock = self._clock(ClockKind.ANSWER)
            pause_clock(clock, workflow.now())
            self._record("clock_answer_paused", "délai de réponse suspendu jusqu'à la réponse du membre")
        return self._changed()

    @request_information.validator
    def _validate_request_information(self, request: InformationRequest | dict[str, Any]) -> None:
        request = _as(InformationRequest, request)
        self._require_open()
        stage = self._status.stage
        if stage is DisputeStage.AWAITING_INFORMATION:
            raise ValueError("information was already requested; wait for the member's reply")
        if stage not in (DisputeStage.RECEIVED, DisputeStage.ACKNOWLEDGED, DisputeStage.IN_PROGRESS):
            raise ValueError(f"cannot request information at stage {stage.value}")

    @workflow.update
    async def respond(self, decision: Decision | dict[str, Any]) -> DisputeStatus:
        decision = _as(Decision, decision)
        s = self._status
        first_answer = s.decision is None
        ref = await self._letter("dispute_answer", decision=decision)
        now = workflow.now()
        if s.stage is DisputeStage.AWAITING_INFORMATION:
            for clock in s.clocks:
                unpause_clock(clock, now)
        self._complete(ClockKind.ACKNOWLEDGEMENT)  # an answer also acknowledges
        self._complete(ClockKind.ANSWER)
        s.decision, s.decided_at, s.member_accepts = decision, now, None
        s.stage = DisputeStage.ANSWERED
        detail = decision.outcome.value + (f" ({decision.amount} {decision.currency})" if decision.amount else "")
        if decision.outcome is Outcome.REJECTED:
            detail += f"; médiateur indiqué : {self._cfg.mediator.name}"
        if ref:
            detail += f"; lettre {ref.letter_id}"
        self._record("answered" if first_answer else "answer_revised", detail)
        return self._changed()

    @respond.validator
    def _validate_respond(self, decision: Decision | dict[str, Any]) -> None:
        decision = _as(Decision, decision)
        self._require_open()
        s = self._status
        if s.stage not in _OPEN_FOR_ANSWER:
            raise ValueError(
                f"cannot answer at stage {s.stage.value}"
                + (
                    "; the member has not replied to the previous answer yet"
                    if s.stage is DisputeStage.ANSWERED
                    else ""
                )
            )
        if s.ethics and s.ethics.opinion is None:
            raise ValueError("the ethics committee's opinion is pending: record it (ethics_opinion) before answering")

    @workflow.update
    async def customer_reply(self, reply: CustomerReply | dict[str, Any]) -> DisputeStatus:
        reply = _as(CustomerReply, reply)
        s = self._status
        s.member_accepts = reply.accepts
        if reply.accepts:
            self._record("answer_accepted", reply.text or "")
            self._close("le membre accepte la réponse")
        else:
            s.stage = DisputeStage.CONTESTED
            ref = await self._letter("mediation_referral")
            self._record(
                "answer_contested",
                (reply.text or "") + (f"; information médiation envoyée ({ref.letter_id})" if ref else ""),
            )
        return self._changed()

    @customer_reply.validator
    def _validate_customer_reply(self, reply: CustomerReply | dict[str, Any]) -> None:
        reply = _as(CustomerReply, reply)
        self._require_open()
        if self._status.stage is not DisputeStage.ANSWERED:
            raise ValueError(f"no answer awaiting the member's reply (stage {self._status.stage.value})")

    @workflow.update
    async def escalate(self, escalation: Escalation | dict[str, Any]) -> DisputeStatus:
        escalation = _as(Escalation, escalation)
        if escalation.level is EscalationLevel.ETHICS_COMMITTEE:
            await self._refer_to_ethics(escalation.reason)
        else:
            await self._escalate_to_supervisor(escalation.reason, dedup=f"manual-{len(self._status.history)}")
        return self._changed()

    @escalate.validator
    def _validate_escalate(self, escalation: Escalation | dict[str, Any]) -> None:
        escalation = _as(Escalation, escalation)
        self._require_open()
        if escalation.level is EscalationLevel.ETHICS_COMMITTEE and self._status.ethics is not None:
            raise ValueError("already referred to the ethics committee")

    @workflow.update
    def ethics_opinion(self, opinion: EthicsOpinion | dict[str, Any]) -> DisputeStatus:
        opinion = _as(EthicsOpinion, opinion)
        ethics = self._status.ethics
        assert ethics is not None
        ethics.opinion, ethics.opinion_at = opinion.text, workflow.now()
        self._record("ethics_opinion", opinion.text[:300])
        return self._changed()

    @ethics_opinion.validator
    def _validate_ethics_opinion(self, opinion: EthicsOpinion | dict[str, Any]) -> None:
        opinion = _as(EthicsOpinion, opinion)
        self._require_open()
        if self._status.ethics is None:
            raise ValueError("the dispute was not referred to the ethics committee")
        if self._status.ethics.opinion is not None:
            raise ValueError("the ethics committee's opinion is already recorded")

    @workflow.update
    async def refer_to_mediation(self, referral: MediationReferral | dict[str, Any]) -> DisputeStatus:
        referral = _as(MediationReferral, referral)
        s = self._status
        now = workflow.now()
        mediator = referral.mediator or self._cfg.mediator
        complete = referral.file_complete_at or now
        child_id = f"mediation-{s.dispute_id}"
        s.mediation = MediationState(
            workflow_id=child_id,
            mediator=mediator,
            referred_at=now,
            file_complete_at=complete,
            opinion_due_at=end_of_day(mediation_last_day(complete, self._cfg.mediation_opinion_days)),
        )
        s.stage = DisputeStage.IN_MEDIATION
        self._mediation_handle = await workflow.start_child_workflow(
            MediationWorkflow.run,
            MediationInput(
                dispute_id=s.dispute_id,
                parent_workflow_id=workflow.info().workflow_id,
                member=s.member,
                contract_id=s.contract_id,
                category=s.category,
                mediator=mediator,
                referred_at=now,
                file_complete_at=complete,
                opinion_days=self._cfg.mediation_opinion_days,
            ),
            id=child_id,
        )
        self._mediation_task = asyncio.ensure_future(self._await_mediation(self._mediation_handle))
        s.clocks.append(
            SlaClock(
                kind=ClockKind.MEDIATION,
                started_at=complete,
                last_day=mediation_last_day(complete, self._cfg.mediation_opinion_days),
                base_due_at=s.mediation.opinion_due_at,
                due_at=s.mediation.opinion_due_at,
            )
        )
        self._record(
            "referred_to_mediation",
            f"{mediator.name}; avis dû avant {s.mediation.opinion_due_at.isoformat()}"
            + (f"; {referral.note}" if referral.note else ""),
        )
        return self._changed()

    @refer_to_mediation.validator
    def _validate_refer_to_mediation(self, referral: MediationReferral | dict[str, Any]) -> None:
        referral = _as(MediationReferral, referral)
        self._require_open()
        s = self._status
        if s.mediation is not None:
            raise ValueError("already referred to mediation")
        now = workflow.now()
        if s.mediation_possible_until and paris_date(now) > s.mediation_possible_until:
            raise ValueError(
                f"mediation must be asked within one year of the complaint (until {s.mediation_possible_until})"
            )
        rejected = (
            s.decision is not None
            and s.decision.outcome is not Outcome.UPHELD
            and s.stage
            in (
                DisputeStage.ANSWERED,
                DisputeStage.CONTESTED,
            )
        )
        contested = s.stage is DisputeStage.CONTESTED
        answer = self._clock(ClockKind.ANSWER)
        unanswered_late = s.decision is None and now >= answer.due_at
        if not (rejected or contested or unanswered_late):
            raise ValueError(
                "mediation is possible only after a rejection, a contested answer, or no answer by "
                f"the deadline ({answer.due_at.isoformat()})"
            )
        if referral.file_complete_at is not None and referral.file_complete_at.tzinfo is None:
            raise ValueError("file_complete_at must carry a UTC offset")

    @workflow.update
    async def mediation_outcome(self, outcome: MediationOutcome | dict[str, Any]) -> DisputeStatus:
        outcome = _as(MediationOutcome, outcome)
        assert self._mediation_handle is not None
        await self._mediation_handle.signal(MediationWorkflow.record_outcome, outcome)
        await workflow.wait_condition(lambda: self._status.stage is not DisputeStage.IN_MEDIATION)
        return self._changed()

    @mediation_outcome.validator
    def _validate_mediation_outcome(self, outcome: MediationOutcome | dict[str, Any]) -> None:
        outcome = _as(MediationOutcome, outcome)
        self._require_open()
        if self._status.stage is not DisputeStage.IN_MEDIATION or self._mediation_handle is None:
            raise ValueError(f"no mediation in progress (stage {self._status.stage.value})")

    @workflow.update
    async def satisfaction(self, rating: Satisfaction | dict[str, Any]) -> DisputeStatus:
        rating = _as(Satisfaction, rating)
        s = self._status
        s.satisfaction = rating
        self._record("satisfaction", f"{rating.score}/5" + (f" — {rating.comment[:200]}" if rating.comment else ""))
        await workflow.execute_activity(
            "dispute_satisfaction",
            SatisfactionInput(
                dispute_id=s.dispute_id,
                category=s.category,
                score=rating.score,
                comment=rating.comment,
                received_at=s.received_at,
                closed_at=s.closed_at,
                at=workflow.now(),
            ),
            **_ACTIVITY,
        )
        return self._changed()

    @satisfaction.validator
    def _validate_satisfaction(self, rating: Satisfaction | dict[str, Any]) -> None:
        rating = _as(Satisfaction, rating)
        s = self._status
        if s.stage is not DisputeStage.CLOSED:
            raise ValueError("satisfaction is asked after closure; the dispute is still open")
        if s.satisfaction is not None:
            raise ValueError("a satisfaction score was already given")

    @workflow.update
    def close(self, request: Close | dict[str, Any]) -> DisputeStatus:
        request = _as(Close, request)
        self._close(request.reason)
        return self._changed()

    @close.validator
    def _validate_close(self, request: Close | dict[str, Any]) -> None:
        request = _as(Close, request)
        self._require_open()
        if self._status.stage is DisputeStage.IN_MEDIATION:
            raise ValueError("mediation in progress: record the mediator's opinion first")

    @workflow.update
    async def correct_category(self, correction: CategoryCorrection | dict[str, Any]) -> DisputeStatus:
        correction = _as(CategoryCorrection, correction)
        s = self._status
        predicted = s.triage.category if s.triage else None
        await workflow.execute_activity(
            "dispute_correction",
            CorrectionInput(
                dispute_id=s.dispute_id,
                subject=self._dispute.subject,
                description=self._dispute.description,
                predicted=predicted,
                corrected=correction.category,
                by=correction.by,
                reason=correction.reason,
                model_version=s.triage.model_version if s.triage else None,
                at=workflow.now(),
            ),
            **_ACTIVITY,
        )
        previous = s.category
        s.category, s.category_source = correction.category, "operator"
        self._record(
            "category_corrected",
            f"{previous.value} → {correction.category.value} par {correction.by}"
            + (f" ({correction.reason})" if correction.reason else ""),
        )
        await self._apply_recovery_rule()
        return self._changed()

    @correct_category.validator
    def _validate_correct_category(self, correction: CategoryCorrection | dict[str, Any]) -> None:
        correction = _as(CategoryCorrection, correction)
        self._require_open()
        if correction.category is self._status.category:
            raise ValueError(f"the category is already {correction.category.value}")

    @workflow.query
    def status(self) -> DisputeStatus:
        return self._snapshot()

    # ================================================================== steps
    async def _triage(self) -> None:
        s = self._status
        result: TriageResult = await workflow.execute_activity(
            "dispute_triage",
            TriageRequest(
                dispute_id=s.dispute_id, subject=self._dispute.subject, description=self._dispute.description
            ),
            result_type=TriageResult,
            **_ACTIVITY,
        )
        s.triage, s.category, s.category_source = result, result.category, "triage"
        terms = ", ".join(f"{t.term} ({t.weight:+.2f})" for t in result.top_terms)
        self._record("triaged", f"{result.category.value} ({result.confidence:.0%}) — termes : {terms}")

    async def _check_clocks(self) -> None:
        """Fire the alerts whose instant has passed and the breach of each open clock."""
        now = workflow.now()
        for clock in self._status.clocks:
            if not clock.open or clock.paused_since is not None or clock.kind is ClockKind.MEDIATION:
                continue
            for threshold in self._cfg.alert_thresholds:
                if threshold in clock.alerts_fired or now < threshold_instant(clock, threshold):
                    continue
                clock.alerts_fired.append(threshold)
                await self._alert(
                    "threshold",
                    clock,
                    self._recipient(),
                    f"Délai {clock.kind.value} à {threshold:.0%} : échéance {clock.due_at.isoformat()}",
                    threshold=threshold,
                )
            if now >= clock.due_at and not clock.breach_recorded:
                clock.breach_recorded = True
                await self._alert(
                    "breach", clock, self._recipient(), f"Délai {clock.kind.value} dépassé ({clock.due_at.isoformat()})"
                )
                if self._cfg.escalate_on_breach:
                    await self._escalate_to_supervisor(f"délai {clock.kind.value} dépassé", dedup=clock.kind.value)
        self._refresh_states(now)

    def _next_wakeup(self) -> datetime | None:
        instants: list[datetime] = []
        for clock in self._status.clocks:
            if not clock.open or clock.paused_since is not None or clock.kind is ClockKind.MEDIATION:
                continue
            instants += [threshold_instant(clock, t) for t in self._cfg.alert_thresholds if t not in clock.alerts_fired]
            if not clock.breach_recorded:
                instants.append(clock.due_at)
        return min(instants, default=None)

    async def _alert(
        self,
        kind: str,
        clock: SlaClock | None,
        recipient: str,
        message: str,
        *,
        threshold: float | None = None,
        dedup: str | None = None,
    ) -> None:
        s = self._status
        self._record(f"alert_{kind}", f"→ {recipient} : {message}")
        key = dedup or f"{clock.kind.value if clock else '-'}:{threshold if threshold is not None else kind}"
        await workflow.execute_activity(
            "dispute_alert",
            AlertInput(
                dispute_id=s.dispute_id,
                workflow_id=workflow.info().workflow_id,
                kind=kind,
                clock=clock.kind if clock else None,
                threshold=threshold,
                due_at=clock.due_at if clock else None,
                recipient=recipient,
                message=message,
                at=workflow.now(),
                dedup_key=f"{s.dispute_id}:{key}",
            ),
            **_ACTIVITY,
        )

    async def _escalate_to_supervisor(self, reason: str, *, dedup: str) -> None:
        s = self._status
        s.escalated = True
        await self._alert(
            "escalation",
            None,
            self._cfg.supervisor,
            f"Escalade au superviseur : {reason}",
            dedup=f"escalation:{dedup}",
        )

    async def _refer_to_ethics(self, reason: str) -> None:
        s = self._status
        s.ethics = EthicsReferral(referred_at=workflow.now(), reason=reason)
        await self._alert(
            "ethics_committee",
            None,
            self._cfg.ethics_committee,
            f"Saisine du comité d'éthique : {reason}",
            dedup="ethics",
        )

    async def _apply_recovery_rule(self) -> None:
        """Hold ``unpaid-{contract_id}`` while a dispute of a holding category is open."""
        s = self._status
        if not s.contract_id:
            return
        should_hold = s.stage is not DisputeStage.CLOSED and s.category in self._cfg.hold_recovery_categories
        link = s.recovery or RecoveryLink(workflow_id=f"unpaid-{s.contract_id}")
        if should_hold == (link.held and not link.resumed):
            return
        s.recovery = link
        handle = workflow.get_external_workflow_handle(link.workflow_id)
        try:
            if should_hold:
                await handle.signal(
                    "hold",
                    Hold(reason=f"réclamation {s.dispute_id} en cours ({CATEGORY_LABELS_FR[s.category]})"),
                )
                link.held, link.resumed, link.note = True, False, "recouvrement suspendu"
                self._record("recovery_held", link.workflow_id)
            else:
                await handle.signal("resume")
                link.resumed, link.note = True, "recouvrement repris"
                self._record("recovery_resumed", link.workflow_id)
        except FailureError as err:
            # No recovery case open for this contract (or it already ended): nothing to hold.
            link.note = f"aucun dossier de recouvrement ouvert ({err.message})"
            self._record("recovery_not_found", f"{link.workflow_id}: {err.message}")

    async def _await_mediation(self, handle: workflow.ChildWorkflowHandle) -> None:
        s = self._status
        try:
            result: MediationResult = await handle
        except FailureError as err:
            self._record("mediation_failed", err.message)
            s.stage = DisputeStage.CONTESTED
            self._dirty = True
            return
        if not isinstance(result, MediationResult):
            result = MediationResult.model_validate(result)
        assert s.mediation is not None
        s.mediation.outcome, s.mediation.follow_up_id = result.outcome, result.follow_up_id
        self._complete(ClockKind.MEDIATION, at=result.received_at)
        s.stage = DisputeStage.MEDIATION_COMPLETED
        detail = f"{result.outcome.opinion.value}" + (" (hors délai)" if result.overdue else "")
        if result.follow_up_id:
            detail += f"; action de suivi {result.follow_up_id}"
        self._record("mediation_outcome", detail)
        self._dirty = True

    async def _letter(self, kind: str, *, decision: Decision | None = None) -> LetterRef | None:
        if not self._cfg.send_letters:
            return None
        s = self._status
        number = sum(1 for letter in s.letters if letter.kind == kind) + 1
        ref: LetterRef = await workflow.execute_activity(
            "dispute_letter",
            DisputeLetterRequest(
                letter_id=f"{s.dispute_id}-{kind}-{number}",
                kind=kind,
                dispute_id=s.dispute_id,
                member=s.member,
                contract_id=s.contract_id,
                received_on=paris_date(s.received_at),
                subject=s.subject,
                category=s.category,
                letter_date=paris_date(workflow.now()),
                answer_due_by=self._clock(ClockKind.ANSWER).last_day,
                decision=decision,
                handler_name=s.handler.name if s.handler else None,
                mediator=self._cfg.mediator,
                portfolio=self._cfg.portfolio,
            ),
            result_type=LetterRef,
            **_LETTER,
        )
        s.letters.append(ref)
        return ref

    async def _flush(self) -> None:
        """Publish the state: search attributes, UI details, read model and audit trail."""
        async with self._flush_lock:
            self._refresh_states(workflow.now())
            self._publish()
            s = self._status
            if self._synced >= len(s.history) and not self._dirty_read_model:
                return
            upto = len(s.history)
            self._dirty_read_model = False
            info = workflow.info()
            # Only the entries not yet written travel: the activity input stays small.
            snapshot = self._snapshot()
            snapshot.history = snapshot.history[self._synced : upto]
            await workflow.execute_activity(
                "dispute_sync",
                DisputeSync(workflow_id=info.workflow_id, run_id=info.run_id, status=snapshot, from_seq=self._synced),
                **_ACTIVITY,
            )
            self._synced = upto

    def _publish(self) -> None:
        s = self._status
        key = (s.stage, s.category, s.sla_status, s.sla_due_at)
        if key == self._published:
            return
        self._published = key
        self._dirty_read_model = True
        workflow.upsert_search_attributes(
            [
                sa.DISPUTE_STAGE.value_set(s.stage.value),
                sa.DISPUTE_CATEGORY.value_set(s.category.value),
                sa.SLA_STATUS.value_set(s.sla_status.value),
                sa.SLA_DUE_AT.value_set(s.sla_due_at) if s.sla_due_at else sa.SLA_DUE_AT.value_unset(),
            ]
        )
        lines = [
            f"**Réclamation {s.dispute_id}** — {s.member.name}"
            + (f", contrat `{s.contract_id}`" if s.contract_id else ""),
            "",
            f"- Objet : {s.subject}",
            f"- Catégorie : {CATEGORY_LABELS_FR[s.category]} ({s.category_source})",
            f"- Étape : **{s.stage.value}**" + (f", gestionnaire {s.handler.name}" if s.handler else ""),
        ]
        for clock in s.clocks:
            lines.append(f"- Délai {clock.kind.value} : {clock.state.value}, dû le {clock.last_day.isoformat()} 24:00")
        if s.escalated:
            lines.append("- ⚠ escaladé au superviseur")
        if s.ethics:
            lines.append("- Comité d'éthique : " + ("avis rendu" if s.ethics.opinion else "saisi, avis attendu"))
        if s.recovery and s.recovery.held and not s.recovery.resumed:
            lines.append(f"- Recouvrement `{s.recovery.workflow_id}` suspendu")
        workflow.set_current_details("\n".join(lines))

    # ================================================================== helpers
    def _should_continue_as_new(self) -> bool:
        """A long dispute starts a fresh history; never with a mediation child running
        (its handle cannot be carried) or a message being handled."""
        if self._status.stage is DisputeStage.IN_MEDIATION or self._dirty:
            return False
        info = workflow.info()
        limit = self._cfg.continue_as_new_after_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    def _record(self, kind: str, detail: str = "") -> None:
        self._status.history.append(HistoryEntry(at=workflow.now(), kind=kind, detail=detail))

    def _changed(self) -> DisputeStatus:
        self._dirty = True
        return self._snapshot()

    def _clock(self, kind: ClockKind) -> SlaClock:
        return next(c for c in self._status.clocks if c.kind is kind)

    def _complete(self, kind: ClockKind, *, at: datetime | None = None) -> None:
        clock = next((c for c in self._status.clocks if c.kind is kind), None)
        if clock is None or clock.completed_at is not None:
            return
        at = at or workflow.now()
        if clock.paused_since is not None:
            unpause_clock(clock, at)
        clock.completed_at = at
        clock.state = clock_state(clock, at, self._at_risk_from)
        self._record(f"clock_{kind.value}_{clock.state.value}", f"terminé le {at.isoformat()}")

    def _close(self, reason: str) -> None:
        s = self._status
        for clock in s.clocks:
            if clock.open:  # closure ends every clock still running
                self._complete(clock.kind)
        s.stage, s.closed_at, s.close_reason = DisputeStage.CLOSED, workflow.now(), reason
        self._record("closed", reason)

    def _require_open(self) -> None:
        if self._status.stage is DisputeStage.CLOSED:
            raise ValueError(f"the dispute is closed ({self._status.close_reason})")

    def _recipient(self) -> str:
        return self._status.handler.name if self._status.handler else self._cfg.supervisor

    @property
    def _at_risk_from(self) -> float:
        return min(self._cfg.alert_thresholds, default=1.0)

    def _refresh_states(self, now: datetime) -> None:
        s = self._status
        for clock in s.clocks:
            clock.state = clock_state(clock, now, self._at_risk_from)
        s.sla_status, s.sla_due_at = overall_sla(s.clocks)

    def _snapshot(self) -> DisputeStatus:
        snap = self._status.model_copy(deep=True)
        now = workflow.now()
        for clock in snap.clocks:
            clock.state = clock_state(clock, now, self._at_risk_from)
        snap.sla_status, snap.sla_due_at = overall_sla(snap.clocks)
        return snap
