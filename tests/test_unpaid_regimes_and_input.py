"""Regimes of DOMAIN.md §1.2, channel choice, and bad input on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from models import calendar as cal
from models.payloads import CaseStatus, Payment
from tests.recovery_support import ProviderDouble, make_case, paris_today, recovery_worker, start_case

S = timedelta(seconds=1)


async def status(handle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus)


@pytest.mark.parametrize("regime", ["mutuelle_individuelle", "prevoyance_collective"])
async def test_same_10_30_10_regimes(ts_env, tmp_path, regime):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        extra = {}
        if regime == "prevoyance_collective":
            extra["employer"] = {"name": "ACME SAS", "email": "paie@acme.example", "lre_consent": True, "is_professional": True}
        handle = await start_case(ts_env.client, make_case(due=due, regime=regime, **extra), tq)
        await ts_env.sleep(timedelta(hours=1))
        st = await status(handle)
        sched = cal.notice_schedule(st.notice_sent_at, cal.DelayRules())
        assert (st.suspension_at, st.termination_at) == (sched.suspension_at, sched.termination_at)
        if regime == "prevoyance_collective":
            assert provider.sent[-1].recipient.name == "ACME SAS"  # the notice goes to the employer
        assert (await handle.result()).stage.value == "litigation"


async def test_collective_compulsory_membership_never_suspends(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        case = make_case(due=due, regime="mutuelle_collective", compulsory_membership=True,
                         employer={"name": "Boulangerie Dupont", "email": "rh@dupont.example", "lre_consent": True})
        handle = await start_case(ts_env.client, case, tq)
        await ts_env.sleep(timedelta(days=120))
        st = await status(handle)
        assert st.stage.value == "notice_sent"
        assert st.suspension_at is None and st.termination_at is None and st.next_deadline is None
        assert provider.sent[-1].recipient.name == "Boulangerie Dupont"
        await handle.signal("payment_received", Payment(payment_id="E1", amount=Decimal("120"), received_at=await ts_env.get_current_time()))
        assert (await handle.result()).stage.value == "regularized"


@pytest.mark.parametrize("surrender,outcome", [(False, "termination"), (True, "reduction")])
async def test_life_insurance_40_days_no_suspension_no_litigation(ts_env, tmp_path, surrender, outcome):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due, regime="vie", has_surrender_value=surrender), tq)
        await ts_env.sleep(timedelta(hours=1))
        st = await status(handle)
        assert st.suspension_at is None
        last = cal.delay_last_day(cal.paris_date(st.notice_sent_at), 40)
        assert st.termination_at == cal.start_of_day_after(last)
        assert provider.sent[-1].life_outcome == outcome
        await ts_env.sleep(timedelta(days=30))
        assert (await status(handle)).stage.value == "notice_sent"  # never "suspended"
        result = await handle.result()
        assert result.stage.value == "terminated"  # L132-20: the insurer has no action for payment
        assert any(outcome in h.detail for h in result.history if h.kind == "terminated")


async def test_partial_unpaid_below_threshold_gets_reminders_only(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) + timedelta(days=1)
        handle = await start_case(ts_env.client, make_case(due=due, amount="9.50", paid_on_period="100"), tq)
        await ts_env.sleep(timedelta(days=60))
        st = await status(handle)
        assert st.unpaid_kind.value == "partial" and st.stage.value == "grace"
        assert provider.kinds() == ["reminder"]
        assert any(h.kind == "reminder_only" for h in st.history)


async def test_partial_unpaid_above_threshold_gets_the_partial_notice(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due, amount="60", paid_on_period="100"), tq)
        await ts_env.sleep(timedelta(hours=1))
        assert (await status(handle)).stage.value == "notice_sent"
        notice = provider.sent[-1]
        assert notice.kind.value == "formal_notice" and notice.unpaid_kind.value == "partial"
        await handle.signal("cancel", {"reason": "test over"})
        await handle.result()


async def test_no_consent_goes_paper_and_clock_starts_at_mailroom_deposit(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due, consent=False), tq)
        await ts_env.sleep(timedelta(days=3))
        st = await status(handle)
        notice = st.letters[-1]
        assert notice.channel.value == "paper" and notice.status == "awaiting_deposit"
        assert st.stage.value == "grace" and st.suspension_at is None
        deposit = await ts_env.get_current_time()
        await handle.signal("lre_event", {"letter_id": notice.letter_id, "event": "deposited",
                                          "occurred_at": deposit.isoformat(), "tracking_number": "1A00000000001"})
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.stage.value == "notice_sent" and st.notice_sent_at == deposit
        assert st.suspension_at == cal.notice_schedule(deposit, cal.DelayRules()).suspension_at
        await handle.signal("cancel", {"reason": "test over"})
        await handle.result()


async def test_bounced_notice_is_resent_by_paper_and_clock_restarts(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(hours=1))
        first = await status(handle)
        lre_notice = first.letters[-1]
        assert lre_notice.channel.value == "lre"
        await ts_env.sleep(timedelta(days=2))
        await handle.signal("lre_event", {"letter_id": lre_notice.letter_id, "event": "bounced",
                                          "occurred_at": (await ts_env.get_current_time()).isoformat()})
        await ts_env.sleep(timedelta(hours=1))
        st = await status(handle)
        paper = st.letters[-1]
        assert paper.kind.value == "formal_notice" and paper.channel.value == "paper" and paper.attempt == 2
        assert st.stage.value == "grace" and st.suspension_at is None
        deposit = await ts_env.get_current_time()
        await handle.signal("lre_event", {"letter_id": paper.letter_id, "event": "deposited", "occurred_at": deposit.isoformat()})
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.suspension_at == cal.notice_schedule(deposit, cal.DelayRules()).suspension_at
        assert st.notice_sent_at > first.notice_sent_at and st.suspension_at >= first.suspension_at
        await handle.signal("cancel", {"reason": "test over"})
        await handle.result()


async def test_update_validator_rejects_bad_payments_and_writes_nothing(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(hours=1))
        now = await ts_env.get_current_time()
        before = await status(handle)
        for payment, reason in [
            (Payment(payment_id="N", amount=Decimal("0"), received_at=now), "amount must be positive"),
            (Payment(payment_id="N", amount=Decimal("-5"), received_at=now), "amount must be positive"),
            (Payment(payment_id="N", amount=Decimal("5"), currency="USD", received_at=now), "currency USD"),
        ]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update("register_payment", payment, result_type=CaseStatus)
            assert reason in str(err.value.cause)
        after = await status(handle)
        assert after.amount_paid == 0 and len(after.history) == len(before.history)
        await handle.signal("cancel", {"reason": "closing"})
        await handle.result()
        # a closed case has completed: the server refuses the update, nothing is applied
        with pytest.raises(RPCError):
            await handle.execute_update(
                "register_payment", Payment(payment_id="late", amount=Decimal("5"), received_at=now), result_type=CaseStatus)
        assert (await status(handle)).amount_paid == 0


async def test_malformed_signals_are_recorded_as_rejected_and_the_case_runs_on(ts_env, tmp_path):
    async with recovery_worker(ts_env.client, tmp_path) as (tq, provider, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(hours=1))
        await handle.signal("payment_received", {"payment_id": "Z", "amount": "not-a-number", "received_at": "yesterday"})
        await handle.signal("payment_received", {"payment_id": "Z", "amount": "-3", "received_at": "2026-11-22T10:00:00+01:00"})
        await handle.signal("lre_event", {"letter_id": "nope", "event": "accepted", "occurred_at": "2026-11-22T10:00:00+01:00"})
        await handle.signal("lre_event", {"letter_id": "x", "event": "exploded", "occurred_at": "2026-11-22T10:00:00+01:00"})
        await handle.signal("installment_due", {"amount": "12"})
        await handle.signal("resume")
        await ts_env.sleep(S)
        st = await status(handle)
        rejected = [h.detail for h in st.history if h.kind == "rejected"]
        assert len(rejected) == 6
        assert any("amount" in r for r in rejected) and any("unknown letter_id 'nope'" in r for r in rejected)
        assert any("not on hold" in r for r in rejected)
        assert st.stage.value == "notice_sent" and st.amount_paid == 0
        result = await handle.result()  # the timeline still runs to its end
        assert result.stage.value == "litigation"


async def test_permanent_provider_error_falls_back_to_paper(ts_env, tmp_path):
    provider = ProviderDouble()
    provider.invalid_recipient_for.add(("formal_notice", 1))
    async with recovery_worker(ts_env.client, tmp_path, provider=provider) as (tq, _, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(days=1, minutes=5))
        st = await status(handle)
        notices = [lt for lt in st.letters if lt.kind.value == "formal_notice"]
        assert [(lt.channel.value, lt.status) for lt in notices] == [("lre", "failed"), ("paper", "awaiting_deposit")]
        assert any(h.kind == "channel_fallback" for h in st.history)
        assert st.stage.value == "grace" and st.suspension_at is None
        await handle.signal("cancel", {"reason": "test over"})
        await handle.result()


async def test_provider_down_shows_a_delivery_problem_then_recovers_or_is_abandoned(ts_env, tmp_path):
    from tests.recovery_support import DownProvider

    for outcome in ("recovers", "cancelled"):
        provider = DownProvider()
        async with recovery_worker(ts_env.client, tmp_path / outcome, provider=provider) as (tq, _, _):
            due = await paris_today(ts_env) - timedelta(days=20)
            handle = await start_case(ts_env.client, make_case(due=due), tq)
            await ts_env.sleep(timedelta(minutes=40))  # past the 30-minute send window
            st = await status(handle)
            assert any(h.kind == "delivery_problem" for h in st.history), [h.kind for h in st.history]
            assert st.stage.value == "grace" and provider.calls > 1
            if outcome == "recovers":
                provider.down = False
                await ts_env.sleep(timedelta(minutes=20))
                st = await status(handle)
                assert st.stage.value == "notice_sent"
                assert [lt.kind.value for lt in st.letters].count("formal_notice") == 1
                assert any(h.kind == "delivery_restored" for h in st.history)
                await handle.signal("cancel", {"reason": "test over"})
            else:
                await handle.signal("cancel", {"reason": "contract sold"})
            result = await handle.result()
            if outcome == "cancelled":
                assert result.stage.value == "cancelled"
                assert result.letters[-1].status == "abandoned"


async def test_notice_that_fails_on_every_channel_is_blocked_not_looped(ts_env, tmp_path):
    provider = ProviderDouble()
    provider.invalid_recipient_for |= {("formal_notice", 1), ("formal_notice", 2)}
    async with recovery_worker(ts_env.client, tmp_path, provider=provider) as (tq, _, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(days=3))
        st = await status(handle)
        notices = [lt for lt in st.letters if lt.kind.value == "formal_notice"]
        assert [(lt.channel.value, lt.status) for lt in notices] == [("lre", "failed"), ("paper", "failed")]
        assert st.next_deadline is None and any(h.kind == "notice_blocked" for h in st.history)
        provider.invalid_recipient_for.clear()
        await handle.signal("retry_delivery")
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.stage.value == "notice_sent" and st.letters[-1].attempt == 3
        await handle.signal("cancel", {"reason": "test over"})
        await handle.result()
