"""Full L113-3 timelines on the time-skipping server, asserted at the exact legal instants."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, select

from models import calendar as cal
from models.payloads import CaseStatus, Payment
from models.recovery import CaseSync
from models.tables import CaseEvent, CaseRecord, PaymentRecord
from tests.recovery_support import make_case, paris_today, recovery_worker, sleep_until, start_case

S = timedelta(seconds=1)


async def status(handle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus)


async def test_total_unpaid_runs_to_litigation_at_exact_instants(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) + timedelta(days=2)
        case = make_case(due=due)
        handle = await start_case(client, case, tq)
        rules = cal.DelayRules()
        notice_day = cal.earliest_notice_date(due, rules)
        notice_at = cal.paris_instant(notice_day, cal.time(9, 0)) if hasattr(cal, "time") else None
        from datetime import time

        notice_at = cal.paris_instant(notice_day, time(9, 0))
        await sleep_until(ts_env, notice_at - S)
        st = await status(handle)
        assert st.stage.value == "grace"
        assert provider.kinds() == ["reminder"]  # friendly reminder at due + 3 days
        await sleep_until(ts_env, notice_at + timedelta(minutes=1))
        st = await status(handle)
        assert st.stage.value == "notice_sent"
        assert provider.kinds() == ["reminder", "formal_notice"]
        expected = cal.notice_schedule(st.notice_sent_at, rules)
        assert cal.paris_date(st.notice_sent_at) == notice_day
        assert st.suspension_at == expected.suspension_at
        assert st.termination_at == expected.termination_at
        assert st.next_deadline.kind == "suspension"
        await sleep_until(ts_env, expected.suspension_at - S)
        assert (await status(handle)).stage.value == "notice_sent"
        await sleep_until(ts_env, expected.suspension_at + S)
        assert (await status(handle)).stage.value == "suspended"
        await sleep_until(ts_env, expected.termination_at - S)
        assert (await status(handle)).stage.value == "suspended"
        result = await handle.result()
        assert result.stage.value == "litigation"
        assert result.balance == Decimal("120.00")
        kinds = [h.kind for h in result.history]
        assert kinds.index("suspended") < kinds.index("terminated") < kinds.index("litigation")
        # the read model and audit trail were written by the activities
        with Session(engine) as db:
            row = db.get(CaseRecord, case.contract_id)
            assert row.stage == "litigation" and row.closed
            events = db.exec(select(CaseEvent).where(CaseEvent.contract_id == case.contract_id)).all()
            assert [e.kind for e in events] == kinds


async def test_full_payment_before_suspension_regularizes(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)  # grace over: notice goes at once
        case = make_case(due=due, amount="80.00")
        handle = await start_case(client, case, tq)
        await ts_env.sleep(timedelta(days=5))
        st = await status(handle)
        assert st.stage.value == "notice_sent"
        now = await ts_env.get_current_time()
        st = await handle.execute_update(
            "register_payment",
            Payment(payment_id="PAY-1", amount=Decimal("80.00"), currency="EUR", received_at=now),
            result_type=CaseStatus,
        )
        assert st.stage.value == "regularized" and st.balance == 0
        result = await handle.result()
        assert result.stage.value == "regularized"
        with Session(engine) as db:
            assert db.get(PaymentRecord, "PAY-1").amount == Decimal("80.00")


async def test_payment_during_suspension_reinstates_at_noon_next_day(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(client, make_case(due=due, amount="100.00"), tq)
        await ts_env.sleep(timedelta(hours=1))
        st = await status(handle)
        await sleep_until(ts_env, st.suspension_at + timedelta(days=2, hours=15))  # 15:00 Paris-ish
        assert (await status(handle)).stage.value == "suspended"
        paid_at = await ts_env.get_current_time()
        await handle.signal("payment_received", Payment(payment_id="P1", amount=Decimal("100"), received_at=paid_at))
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.stage.value == "suspended"  # not yet: reinstatement at noon the next day
        expected = cal.reinstatement_at(paid_at)
        assert st.reinstatement_at == expected
        assert expected.astimezone(cal.PARIS).hour == 12
        assert cal.paris_date(expected) == cal.paris_date(paid_at) + timedelta(days=1)
        await sleep_until(ts_env, expected - S)
        assert (await status(handle)).stage.value == "suspended"
        result = await handle.result()
        assert result.stage.value == "reinstated"
        assert "reinstatement" in [lt.kind.value for lt in result.letters]


async def test_partial_payments_lower_balance_but_change_no_deadline(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(client, make_case(due=due, amount="150.00"), tq)
        await ts_env.sleep(timedelta(hours=1))
        before = await status(handle)
        now = await ts_env.get_current_time()
        st = await handle.execute_update(
            "register_payment", Payment(payment_id="A", amount=Decimal("50"), received_at=now), result_type=CaseStatus)
        assert st.balance == Decimal("100.00") and st.stage.value == "notice_sent"
        assert (st.suspension_at, st.termination_at) == (before.suspension_at, before.termination_at)
        # the same payment_id again is a no-op returning the current status
        again = await handle.execute_update(
            "register_payment", Payment(payment_id="A", amount=Decimal("50"), received_at=now), result_type=CaseStatus)
        assert again.balance == Decimal("100.00")
        await sleep_until(ts_env, before.suspension_at + S)
        await handle.signal("payment_received", Payment(payment_id="B", amount=Decimal("60"), received_at=await ts_env.get_current_time()))
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.stage.value == "suspended" and st.balance == Decimal("40.00") and st.reinstatement_at is None
        result = await handle.result()
        assert result.stage.value == "litigation" and result.balance == Decimal("40.00")


async def test_installment_during_suspension_is_required_for_reinstatement(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(client, make_case(due=due, amount="100.00"), tq)
        await ts_env.sleep(timedelta(hours=1))
        st = await status(handle)
        await sleep_until(ts_env, st.suspension_at + timedelta(days=1))
        new_due = cal.paris_date(await ts_env.get_current_time())
        await handle.signal("installment_due", {"due_date": new_due.isoformat(), "amount": "100.00"})
        await ts_env.sleep(S)
        now = await ts_env.get_current_time()
        st = await handle.execute_update(
            "register_payment", Payment(payment_id="X", amount=Decimal("100"), received_at=now), result_type=CaseStatus)
        assert st.amount_due == Decimal("200.00") and st.balance == Decimal("100.00")
        assert st.reinstatement_at is None and st.stage.value == "suspended"
        st = await handle.execute_update(
            "register_payment", Payment(payment_id="Y", amount=Decimal("100"), received_at=now), result_type=CaseStatus)
        assert st.reinstatement_at == cal.reinstatement_at(now)
        assert (await handle.result()).stage.value == "reinstated"


async def test_refused_and_negligence_change_nothing(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(hours=1))
        before = await status(handle)
        notice = next(lt for lt in before.letters if lt.kind.value == "formal_notice")
        now = await ts_env.get_current_time()
        await handle.signal("lre_event", {"letter_id": notice.letter_id, "event": "refused", "occurred_at": now.isoformat()})
        await ts_env.sleep(timedelta(days=16))
        await handle.signal("lre_event", {"letter_id": notice.letter_id, "event": "negligence", "occurred_at": now.isoformat(),
                                          "proof_url": "https://lre.example/proof/neg"})
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.suspension_at == before.suspension_at and st.termination_at == before.termination_at
        letter = next(lt for lt in st.letters if lt.letter_id == notice.letter_id)
        assert letter.status == "negligence" and letter.proofs["negligence"] == "https://lre.example/proof/neg"
        assert (await handle.result()).stage.value == "litigation"


async def test_hold_and_resume_move_deadlines(ts_env, tmp_path):
    client = ts_env.client
    async with recovery_worker(client, tmp_path) as (tq, provider, engine):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(client, make_case(due=due), tq)
        await ts_env.sleep(timedelta(hours=1))
        before = await status(handle)
        await handle.signal("hold", {"reason": "premium disputed by the member"})
        await ts_env.sleep(timedelta(days=40))  # past the original suspension instant
        st = await status(handle)
        assert st.stage.value == "on_hold" and st.held_from_stage.value == "notice_sent"
        await handle.signal("resume")
        await ts_env.sleep(S)
        st = await status(handle)
        assert st.stage.value == "notice_sent"
        assert st.suspension_at >= before.suspension_at + timedelta(days=40)
        assert st.suspension_at.astimezone(cal.PARIS).hour == 0
        await handle.signal("cancel", {"reason": "written off"})
        assert (await handle.result()).stage.value == "cancelled"


async def test_messages_arriving_while_the_notice_is_being_sent(ts_env, tmp_path):
    """Full payment or a hold during the send must not be overwritten by the deposit."""
    import asyncio

    from tests.recovery_support import GatedProvider

    for message in ("payment", "hold"):
        provider = GatedProvider()
        async with recovery_worker(ts_env.client, tmp_path / message, provider=provider) as (tq, _, _):
            due = await paris_today(ts_env) - timedelta(days=20)
            handle = await start_case(ts_env.client, make_case(due=due), tq)
            await asyncio.wait_for(provider.waiting.wait(), 30)
            if message == "payment":
                st = await handle.execute_update(
                    "register_payment",
                    Payment(payment_id="EARLY", amount=Decimal("120"), received_at=await ts_env.get_current_time()),
                    result_type=CaseStatus)
                assert st.stage.value == "regularized"
            else:
                await handle.signal("hold", {"reason": "disputed"})
            provider.gate.set()
            if message == "payment":
                result = await handle.result()
                assert result.stage.value == "regularized" and result.notice_sent_at is not None
                assert result.suspension_at is None and result.termination_at is None
            else:
                await ts_env.sleep(S)
                st = await status(handle)
                assert st.stage.value == "on_hold" and st.held_from_stage.value == "notice_sent"
                await handle.signal("cancel", {"reason": "test over"})
                await handle.result()


async def test_cancel_arriving_during_a_database_write_closes_the_case(ts_env, tmp_path):
    """A message that lands while an activity of the main loop runs must not be lost."""
    import asyncio
    import uuid

    from temporalio import activity

    from activities.db import make_engine
    from activities.recovery import RecoveryActivities
    from models.policy import load_policies
    from models.settings import Settings
    from tests.recovery_support import ProviderDouble
    from worker import build_worker

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    real = RecoveryActivities(engine, load_policies(), tmp_path)
    provider = ProviderDouble()
    entered, release = asyncio.Event(), asyncio.Event()
    syncs = 0

    @activity.defn(name="sync_case")
    async def gated_sync(sync: CaseSync) -> None:
        nonlocal syncs
        syncs += 1
        if syncs == 1:  # the first write, right after the case opened
            entered.set()
            await release.wait()
        real.sync_case(sync)

    tq = f"tq-{uuid.uuid4().hex[:6]}"
    acts = [real.load_policy, gated_sync, real.record_payment, provider.send_letter, provider.hand_over_to_litigation]
    async with build_worker(ts_env.client, Settings(data_dir=tmp_path), activities=acts, task_queue=tq):
        due = await paris_today(ts_env) + timedelta(days=1)
        handle = await start_case(ts_env.client, make_case(due=due), tq)
        await asyncio.wait_for(entered.wait(), 60)
        await handle.signal("cancel", {"reason": "contract transferred"})
        release.set()
        from temporalio.api.enums.v1 import EventType

        async def completed() -> bool:
            history = await handle.fetch_history()
            return history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

        for _ in range(50):  # real time, no skipping: the case must close at once, not at its next deadline
            await asyncio.sleep(0.1)
            if await completed():
                break
        assert await completed()
        result = await handle.result()
        assert result.stage.value == "cancelled" and result.closed
