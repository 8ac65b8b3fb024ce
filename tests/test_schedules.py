"""The reconciliation schedule on the real dev server: created once, and a triggered run
executes LreReconciliationWorkflow on the worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity

from models.payloads import LreEvent
from models.settings import Settings
from starter.schedules import RECONCILIATION_SCHEDULE_ID, ensure_schedules
from worker import build_worker

pytestmark = pytest.mark.devserver


async def test_reconciliation_schedule_runs_the_workflow(dev_env, tmp_path):
    client = dev_env.client
    tq = f"sched-{uuid.uuid4().hex[:6]}"
    asked: list[float] = []

    @activity.defn(name="reconcile_letters")
    async def reconcile_letters(older_than_seconds: float) -> list[LreEvent]:
        asked.append(older_than_seconds)
        return []

    assert await ensure_schedules(client, tq) == [RECONCILIATION_SCHEDULE_ID]
    assert await ensure_schedules(client, tq) == []  # idempotent
    handle = client.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)
    try:
        async with build_worker(client, Settings(data_dir=tmp_path), activities=[reconcile_letters], task_queue=tq):
            await handle.trigger()
            for _ in range(100):
                if asked:
                    break
                await asyncio.sleep(0.2)
        assert asked == [3600.0]
        desc = await handle.describe()
        assert desc.schedule.spec.intervals[0].every.total_seconds() == 900
    finally:
        await handle.delete()
