"""A premium dispute against the real UnpaidPremiumWorkflow: the recovery case goes on
hold while the amount is contested and resumes, deadlines moved, when the dispute closes
(DOMAIN.md §2: no suspension while the amount itself is contested)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from models.disputes import (
    Acknowledge,
    Close,
    Decision,
    Dispute,
    DisputeCategory,
    DisputeStage,
    Member,
    Outcome,
)
from models.payloads import CaseStatus
from models.settings import Settings
from tests.recovery_support import ProviderDouble, make_case, paris_today, start_case
from tests.test_dispute_helpers import make_activities, register_search_attributes
from worker import build_worker
from workflows.dispute import DisputeWorkflow


@asynccontextmanager
async def full_worker(client, tmp_path):
    from activities.recovery import RecoveryActivities
    from models.policy import load_policies

    settings = Settings(_env_file=None, data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    disputes, engine = make_activities(tmp_path, settings.resolved_database_url)
    real = RecoveryActivities(engine, load_policies(), settings.letters_dir)
    provider = ProviderDouble()  # the LRE provider is not the point here
    acts = [
        real.load_policy,
        real.sync_case,
        real.record_payment,
        provider.send_letter,
        provider.hand_over_to_litigation,
        *disputes.all(),
    ]
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, activities=acts, task_queue=queue):
        yield queue


async def _case(handle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus)


async def _until(fetch, predicate, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await fetch()
        if predicate(value):
            return value
        if loop.time() > end:
            raise AssertionError(f"not reached: {value}")
        await asyncio.sleep(0.1)


async def test_premium_dispute_holds_the_real_recovery_case_until_closed(ts_env, tmp_path):
    await register_search_attributes(ts_env.client)
    client = ts_env.client
    async with full_worker(client, tmp_path) as queue:
        due = await paris_today(ts_env) - timedelta(days=20)
        case = make_case(due=due)
        recovery = await start_case(client, case, queue)
        before = await _until(lambda: _case(recovery), lambda s: s.stage.value == "notice_sent")

        dispute = Dispute(
            dispute_id=f"P-{uuid.uuid4().hex[:8]}",
            member=Member(name="Alice Martin", email="alice@example.org"),
            contract_id=case.contract_id,
            received_at=await ts_env.get_current_time(),
            subject="Cotisation réclamée déjà payée",
            description="Je conteste le montant de la mise en demeure : j'ai payé par virement.",
            category=DisputeCategory.PREMIUMS,
        )
        handle = await client.start_workflow(
            DisputeWorkflow.run, dispute, id=f"dispute-{dispute.dispute_id}", task_queue=queue
        )
        held = await _until(lambda: _case(recovery), lambda s: s.stage.value == "on_hold")
        assert held.held_from_stage.value == "notice_sent" and dispute.dispute_id in held.hold_reason

        # The dispute lasts past the original suspension instant: no suspension happens.
        await ts_env.sleep(timedelta(days=35))
        assert (await _case(recovery)).stage.value == "on_hold"

        await handle.execute_update(DisputeWorkflow.acknowledge, Acknowledge())
        await handle.execute_update(
            DisputeWorkflow.respond, Decision(outcome=Outcome.REJECTED, text="Le virement n'a pas été reçu.")
        )
        st = await handle.execute_update(DisputeWorkflow.close, Close(reason="réponse apportée"))
        assert st.stage is DisputeStage.CLOSED
        resumed = await _until(lambda: _case(recovery), lambda s: s.stage.value == "notice_sent")
        assert resumed.suspension_at >= before.suspension_at + timedelta(days=35)
        status = await handle.query(DisputeWorkflow.status)
        assert status.recovery.held and status.recovery.resumed
        await recovery.signal("cancel", {"reason": "test over"})
        await handle.terminate("test over")
