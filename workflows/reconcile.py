"""LreReconciliationWorkflow — the safety net for lost provider webhooks.

Started by the Temporal schedule ``lre-reconciliation`` (see starter/schedules.py): asks
the provider about every letter still waiting past its expected time and signals each
outcome to its case, so a missed callback never leaves a case waiting forever.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.payloads import LreEvent


@workflow.defn(name="LreReconciliationWorkflow")
class LreReconciliationWorkflow:
    @workflow.run
    async def run(self, older_than_seconds: float = 3600.0) -> int:
        events = await workflow.execute_activity(
            "reconcile_letters", older_than_seconds, result_type=list[LreEvent],
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=2), maximum_attempts=5),
        )
        workflow.set_current_details(f"{len(events)} letter outcome(s) recovered from the provider")
        return len(events)
