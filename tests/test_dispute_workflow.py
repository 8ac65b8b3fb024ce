"""DisputeWorkflow on the time-skipping server: clocks, alerts, breach and escalation,
answer letters, mediation, recovery hold/resume, bad messages."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from pypdf import PdfReader
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy

from models.calendar import PARIS
from models.disputes import (
    Acknowledge,
    CategoryCorrection,
    Close,
    CustomerMessage,
    CustomerReply,
    Decision,
    Dispute,
    DisputeAlert,
    DisputeCategory,
    DisputeConfig,
    DisputeFollowUp,
    DisputeRecord,
    DisputeSatisfaction,
    DisputeStage,
    DisputeStatus,
    Escalation,
    EscalationLevel,
    EthicsOpinion,
    Handler,
    InformationRequest,
    MediationOutcome,
    MediationReferral,
    MediatorOpinion,
    Member,
    Outcome,
    Satisfaction,
    SlaState,
    TriageCorrectionRecord,
)
from models.tables import CaseEvent
from tests.test_dispute_helpers import (
    RecordingRecovery,
    at_paris,
    dispute_worker,
    new_id,
    register_search_attributes,
    sleep_until,
)
from workflows.dispute import DisputeWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest_asyncio.fixture
async def env(ts_env):
    """A fresh time-skipping server per test (custom search attributes registered)."""
    await register_search_attributes(ts_env.client)
    return ts_env


def _dispute(received_at: datetime, **kw) -> Dispute:
    base = dict(
        dispute_id=new_id(),
        member=Member(name="Mme Claire Dubois", email="claire.dubois@example.org", member_id="M-1042"),
        received_at=received_at,
        channel="email",
        subject="Remboursement dentaire insuffisant",
        description="Ma couronne n'a été remboursée que 120 euros au lieu des 300 % prévus.",
        category=DisputeCategory.REIMBURSEMENT,
    )
    base.update(kw)
    return Dispute(**base)


async def _start(env, queue: str, dispute: Dispute):
    return await env.client.start_workflow(
        DisputeWorkflow.run, dispute, id=f"dispute-{dispute.dispute_id}", task_queue=queue
    )


async def _status(handle) -> DisputeStatus:
    return await handle.query(DisputeWorkflow.status)


async def _wait_for(handle, predicate, timeout: float = 20.0) -> DisputeStatus:
    """Poll the query until the workflow reached a state (no time skipping involved)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        st = await _status(handle)
        if predicate(st):
            return st
        if loop.time() > deadline:
            raise AssertionError(f"state not reached; stage={st.stage} history={[h.kind for h in st.history]}")
        await asyncio.sleep(0.1)


def _kinds(st: DisputeStatus) -> list[str]:
    return [h.kind for h in st.history]


async def test_christmas_dispute_clocks_search_attributes_and_details(env, tmp_path):
    async with dispute_worker(env.client, tmp_path) as (queue, engine):
        d = _dispute(at_paris(2026, 12, 18, 15))
        handle = await _start(env, queue, d)
        try:
            st = await _wait_for(handle, lambda s: "clock_answer" in _kinds(s))
            ack, answer = st.clocks
            assert (ack.last_day, answer.last_day) == (date(2026, 12, 31), date(2027, 2, 16))
            assert ack.due_at == datetime(2027, 1, 1, tzinfo=PARIS)
            assert answer.due_at == datetime(2027, 2, 17, tzinfo=PARIS)
            assert st.stage is DisputeStage.RECEIVED and st.category is DisputeCategory.REIMBURSEMENT
            assert st.sla_due_at == ack.due_at

            # Search attributes and current details for operators in the UI.
            desc = await _wait_for_description(handle)
            attrs = desc.typed_search_attributes
            from models import search_attributes as sa

            assert attrs.get(sa.DISPUTE_STAGE) == "received"
            assert attrs.get(sa.DISPUTE_CATEGORY) == "reimbursement"
            assert attrs.get(sa.SLA_DUE_AT) == ack.due_at
            assert attrs.get(sa.SLA_STATUS) in ("on_track", "at_risk", "breached")
            # The read model is written by the sync activity.
            rec = await _wait_db(engine, lambda db: db.get(DisputeRecord, d.dispute_id))
            assert rec.category == "reimbursement" and rec.contract_id is None
        finally:
            await handle.terminate("test over")


async def _wait_for_description(handle, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        desc = await handle.describe()
        if desc.typed_search_attributes and len(desc.typed_search_attributes) >= 4:
            return desc
        if loop.time() > deadline:
            raise AssertionError(f"search attributes not set: {desc.typed_search_attributes}")
        await asyncio.sleep(0.1)


async def _wait_db(engine, fetch, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with Session(engine) as db:
            value = fetch(db)
            if value:
                return value
        if loop.time() > deadline:
            raise AssertionError("database row not written")
        await asyncio.sleep(0.1)
