"""Client-side operations on recovery cases, shared by the HTTP API and the CLI.

Only workflow and message names cross to Temporal (the public contract); errors are
turned into ``CaseError`` with an HTTP-like status so every front end reports them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import search_attributes as sa
from models.payloads import Cancel, CaseStatus, Hold, Payment, Stage, UnpaidCase

WORKFLOW_NAME = "UnpaidPremiumWorkflow"


def workflow_id(contract_id: str) -> str:
    return f"unpaid-{contract_id}"


@dataclass
class CaseError(Exception):
    status: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


async def open_case(client: Client, case: UnpaidCase, task_queue: str) -> WorkflowHandle:
    try:
        return await client.start_workflow(
            WORKFLOW_NAME, case, id=workflow_id(case.contract_id), task_queue=task_queue,
            result_type=CaseStatus,
            # a new case for a contract whose previous case closed is a new run of the same id
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.CONTRACT_ID, case.contract_id),
                SearchAttributePair(sa.PORTFOLIO, case.portfolio),
                SearchAttributePair(sa.RECOVERY_STAGE, Stage.GRACE.value),
                SearchAttributePair(sa.UNPAID_KIND, case.unpaid_kind.value),
                SearchAttributePair(sa.AMOUNT_DUE, float(case.arrears)),
            ]),
            static_summary=f"Recovery {case.contract_id} ({case.regime.value}, {case.portfolio})",
        )
    except WorkflowAlreadyStartedError:
        raise CaseError(409, f"a recovery case is already open for contract {case.contract_id}", "contract_id")


async def _handle(client: Client, contract_id: str) -> WorkflowHandle:
    handle = client.get_workflow_handle(workflow_id(contract_id), result_type=CaseStatus)
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseError(404, f"no recovery case for contract {contract_id}", "contract_id")
        raise
    return handle


async def get_status(client: Client, contract_id: str) -> CaseStatus:
    handle = await _handle(client, contract_id)
    return await handle.query("status", result_type=CaseStatus)


async def _open_handle(client: Client, contract_id: str) -> WorkflowHandle:
    handle = await _handle(client, contract_id)
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        st = await handle.query("status", result_type=CaseStatus)
        raise CaseError(409, f"case {contract_id} is closed ({st.stage.value})", "contract_id")
    return handle


async def register_payment(client: Client, contract_id: str, payment: Payment) -> CaseStatus:
    handle = await _handle(client, contract_id)
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        st = await handle.query("status", result_type=CaseStatus)
        if payment.payment_id in st.payment_ids:
            return st  # the back office retried a payment already applied: same answer
        raise CaseError(409, f"case {contract_id} is closed ({st.stage.value}); payment not applied", "contract_id")
    try:
        return await handle.execute_update("register_payment", payment, result_type=CaseStatus)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        if "closed" in message:
            raise CaseError(409, message, "contract_id")
        field = "currency" if "currency" in message else "received_at" if "received_at" in message else "amount"
        raise CaseError(422, message, field)


async def hold(client: Client, contract_id: str, hold: Hold) -> None:
    await (await _open_handle(client, contract_id)).signal("hold", hold)


async def resume(client: Client, contract_id: str) -> None:
    handle = await _open_handle(client, contract_id)
    st = await handle.query("status", result_type=CaseStatus)
    if st.stage is not Stage.ON_HOLD:
        raise CaseError(409, f"case {contract_id} is not on hold ({st.stage.value})", "contract_id")
    await handle.signal("resume")


async def cancel(client: Client, contract_id: str, cancel: Cancel) -> None:
    await (await _open_handle(client, contract_id)).signal("cancel", cancel)


def visibility_query(stage: str | None = None, portfolio: str | None = None, extra: str | None = None) -> str:
    clauses = [f"WorkflowType = '{WORKFLOW_NAME}'"]
    for name, value in (("RecoveryStage", stage), ("Portfolio", portfolio)):
        if value:
            if not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise CaseError(422, f"invalid {name} filter {value!r}", name)
            clauses.append(f"{name} = '{value}'")
    if extra:
        clauses.append(extra)
    return " AND ".join(clauses)


async def list_cases(
    client: Client, *, stage: str | None = None, portfolio: str | None = None,
    page_size: int = 50, next_page_token: bytes | None = None,
) -> tuple[list[dict[str, Any]], bytes | None]:
    query = visibility_query(stage, portfolio)
    it = client.list_workflows(query, page_size=page_size, next_page_token=next_page_token)
    await it.fetch_next_page()
    items = []
    for wf in it.current_page or []:
        attrs = wf.typed_search_attributes
        next_deadline = attrs.get(sa.NEXT_DEADLINE)
        items.append({
            "contract_id": attrs.get(sa.CONTRACT_ID),
            "workflow_id": wf.id,
            "run_id": wf.run_id,
            "status": wf.status.name.lower() if wf.status else None,
            "stage": attrs.get(sa.RECOVERY_STAGE),
            "portfolio": attrs.get(sa.PORTFOLIO),
            "unpaid_kind": attrs.get(sa.UNPAID_KIND),
            "amount_due": attrs.get(sa.AMOUNT_DUE),
            "next_deadline": next_deadline.isoformat() if next_deadline else None,
            "started_at": wf.start_time.isoformat() if wf.start_time else None,
        })
    return items, it.next_page_token
