"""Temporal schedules the product relies on, created idempotently at start-up."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

RECONCILIATION_SCHEDULE_ID = "lre-reconciliation"


async def ensure_schedules(client: Client, task_queue: str, *, every: timedelta = timedelta(minutes=15),
                           older_than: timedelta = timedelta(hours=1)) -> list[str]:
    """Create the reconciliation schedule unless it exists; returns the ids created."""
    created = []
    try:
        await client.create_schedule(
            RECONCILIATION_SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    "LreReconciliationWorkflow", older_than.total_seconds(),
                    id="lre-reconciliation-run", task_queue=task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
        created.append(RECONCILIATION_SCHEDULE_ID)
    except ScheduleAlreadyRunningError:
        pass
    return created
