"""Shared helpers of the dispute tests (no tests here).

``RecordingRecovery`` stands in for the recovery workflow under its real name
``UnpaidPremiumWorkflow``: it records the ``hold`` / ``resume`` signals a dispute sends.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from models.payloads import Hold


@workflow.defn(name="UnpaidPremiumWorkflow")
class RecordingRecovery:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, contract_id: str) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.events

    @workflow.signal
    def hold(self, hold: Hold) -> None:
        self.events.append(f"hold:{hold.reason}")

    @workflow.signal
    def resume(self) -> None:
        self.events.append("resume")

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def signals(self) -> list[str]:
        return self.events


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server accepts custom search attributes through the operator API."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from models import search_attributes as sa

    types = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "DOUBLE": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
        "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={k.name: types[k.indexed_value_type.name] for k in sa.ALL},
            )
        )
    except Exception as err:  # already registered by an earlier module
        if "already" not in str(err).lower():
            raise


def make_activities(tmp: Path, database_url: str | None = None):
    from activities.db import make_engine
    from activities.disputes import DisputeActivities
    from models.policy import load_policies

    engine = make_engine(database_url or f"sqlite:///{tmp / 'disputes.db'}")
    return DisputeActivities(engine, tmp / "letters", load_policies()), engine


@asynccontextmanager
async def dispute_worker(client: Client, tmp: Path, *, extra_workflows=()):
    from worker import sandbox_runner
    from workflows.dispute import DisputeWorkflow
    from workflows.mediation import MediationWorkflow

    acts, engine = make_activities(tmp)
    queue = f"disputes-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[DisputeWorkflow, MediationWorkflow, *extra_workflows],
        activities=acts.all(),
        activity_executor=ThreadPoolExecutor(4),
        workflow_runner=sandbox_runner(),
    ):
        yield queue, engine


def new_id(prefix: str = "D") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def at_paris(y: int, m: int, d: int, hh: int = 10) -> datetime:
    from models.calendar import PARIS

    return datetime(y, m, d, hh, 0, tzinfo=PARIS)


async def sleep_until(env, instant: datetime) -> None:
    now = await env.get_current_time()
    if instant > now:
        await env.sleep(instant - now + timedelta(seconds=2))
