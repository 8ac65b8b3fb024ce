"""Client-side operations on recovery cases, shared by the HTTP API and the CLI.

Only workflow and message names cross to Temporal (the public contract); errors are
turned into ``CaseError`` with an HTTP-like status so every front end reports them alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import calendar as cal
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


def case_key(case: UnpaidCase) -> str:
    """Fingerprint of what a case is about (contract + unpaid instalments), kept in the memo.

    A bulk import re-run compares it with a closed run's memo: the same file line must not
    reopen a case that was settled in the meantime.
    """
    basis = {
        "contract_id": case.contract_id,
        "installments": sorted((i.due_date.isoformat(), str(i.amount)) for i in case.installments),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def validate_new_case(case: UnpaidCase, today: date | None = None) -> None:
    """Business rules a new case must meet, beyond the payload model's field types.

    They live here, client-side, rather than in ``UnpaidCase``: the workflow re-validates its
    input on every replay, so a new model rule (or a clock-dependent one) could make an
    existing history fail to replay. Every front end (API, CLI, bulk import) calls this.
    """
    from babel.numbers import is_currency

    today = today or cal.paris_date(datetime.now(cal.PARIS))
    if not is_currency(case.currency):
        raise CaseError(422, f"currency {case.currency!r} is not an ISO 4217 code", "currency")
    # The letters go to the employer on collective contracts (L221-8), else to the policyholder.
    collective = case.regime.value in ("mutuelle_collective", "prevoyance_collective")
    recipients = (
        [("employer", case.employer)] if (collective and case.employer) else [("policyholder", case.policyholder)]
    )
    if case.employer is not None and not collective:
        recipients.append(("employer", case.employer))
    for name, person in recipients:
        if person.address is None and not person.email:
            raise CaseError(
                422,
                f"{name} has neither a postal address nor an e-mail: no registered letter can reach them",
                f"{name}.address",
            )
    for n, inst in enumerate(case.installments):
        if inst.due_date > today:
            raise CaseError(
                422,
                f"instalment due {inst.due_date} is not due yet (today {today}): it cannot be unpaid",
                f"installments.{n}.due_date",
            )
    if case.paid_on_period >= case.period_premium:
        raise CaseError(
            422,
            f"paid_on_period {case.paid_on_period} covers the period premium {case.period_premium}: nothing is unpaid",
            "paid_on_period",
        )


async def open_case(client: Client, case: UnpaidCase, task_queue: str, *, reuse_closed: bool = True) -> WorkflowHandle:
    """Start the recovery workflow for a contract; 409 if a case is already open.

    ``reuse_closed=False`` (bulk import) refuses to start a new run over a closed one: the
    caller decides with the closed run's memo whether the line was already imported.
    """
    validate_new_case(case)
    try:
        return await client.start_workflow(
            WORKFLOW_NAME,
            case,
            id=workflow_id(case.contract_id),
            task_queue=task_queue,
            result_type=CaseStatus,
            # a new case for a contract whose previous case closed is a new run of the same id
            id_reuse_policy=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE if reuse_closed else WorkflowIDReusePolicy.REJECT_DUPLICATE
            ),
            memo={"case_key": case_key(case)},
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.CONTRACT_ID, case.contract_id),
                    SearchAttributePair(sa.PORTFOLIO, case.portfolio),
                    SearchAttributePair(sa.RECOVERY_STAGE, Stage.GRACE.value),
                    SearchAttributePair(sa.UNPAID_KIND, case.unpaid_kind.value),
                    SearchAttributePair(sa.AMOUNT_DUE, float(case.arrears)),
                ]
            ),
            static_summary=f"Recovery {case.contract_id} ({case.regime.value}, {case.portfolio})",
        )
    except WorkflowAlreadyStartedError:
        raise CaseError(
            409, f"a recovery case is already open for contract {case.contract_id}", "contract_id"
        ) from None


async def import_case(client: Client, case: UnpaidCase, task_queue: str) -> tuple[str, str]:
    """Open a case from a bulk-import line, safe to re-run: returns (outcome, detail).

    Outcomes: ``opened``; ``already_open`` (a case is running for the contract);
    ``already_closed`` (this very case was imported before and has closed since: not
    reopened). A closed case about other instalments is a new case: a new run is started.
    Invalid lines raise ``CaseError`` (422).
    """
    try:
        handle = await open_case(client, case, task_queue, reuse_closed=False)
        return "opened", handle.result_run_id or ""
    except CaseError as err:
        if err.status != 409:
            raise
    handle = client.get_workflow_handle(workflow_id(case.contract_id))
    desc = await handle.describe()
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return "already_open", f"case running since {desc.start_time.isoformat() if desc.start_time else '?'}"
    memo = await desc.memo()
    if memo.get("case_key") == case_key(case):
        stage = desc.typed_search_attributes.get(sa.RECOVERY_STAGE) or "closed"
        return "already_closed", f"imported before; the case has closed since ({stage}): not reopened"
    try:
        handle = await open_case(client, case, task_queue, reuse_closed=True)
    except CaseError as err:  # raced with another importer of the same line
        if err.status == 409:
            return "already_open", err.message
        raise
    return "opened", handle.result_run_id or ""


async def _handle(client: Client, contract_id: str) -> WorkflowHandle:
    handle = client.get_workflow_handle(workflow_id(contract_id), result_type=CaseStatus)
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CaseError(404, f"no recovery case for contract {contract_id}", "contract_id") from None
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


async def _answer_for_closed_case(handle: WorkflowHandle, contract_id: str, payment: Payment,
                                  message: str | None = None) -> CaseStatus:
    """A closed case: a retry of a payment it applied gets the same answer, any other is a 409."""
    st = await handle.query("status", result_type=CaseStatus)
    if payment.payment_id in st.payment_ids:
        return st  # the back office retried a payment already applied: same answer
    raise CaseError(409, message or f"case {contract_id} is closed ({st.stage.value}); payment not applied",
                    "contract_id")


async def register_payment(client: Client, contract_id: str, payment: Payment) -> CaseStatus:
    handle = await _handle(client, contract_id)
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return await _answer_for_closed_case(handle, contract_id, payment)
    try:
        return await handle.execute_update("register_payment", payment, result_type=CaseStatus)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        if "closed" in message:
            # closed while still running (final letters, flush)
            return await _answer_for_closed_case(handle, contract_id, payment, message)
        field = "currency" if "currency" in message else "received_at" if "received_at" in message else "amount"
        raise CaseError(422, message, field) from None
    except RPCError as err:
        # the case completed between describe and update: the server refuses the update
        if err.status == RPCStatusCode.NOT_FOUND and (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return await _answer_for_closed_case(handle, contract_id, payment)
        raise


async def find_contract(client: Client, reference: str) -> str | None:
    """The contract id whose recovery workflow exists for this exact reference, else None."""
    for candidate in dict.fromkeys((reference, reference.upper())):
        if not candidate or len(candidate) > 64:
            continue
        try:
            await client.get_workflow_handle(workflow_id(candidate)).describe()
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                continue
            raise
        return candidate
    return None


async def contract_index(client: Client) -> dict[str, set[str]]:
    """Every contract with a recovery case, keyed by its alphanumeric form (for RF references)."""
    index: dict[str, set[str]] = {}
    async for wf in client.list_workflows(f"WorkflowType = '{WORKFLOW_NAME}'", page_size=1000):
        contract = wf.typed_search_attributes.get(sa.CONTRACT_ID) or wf.id.removeprefix("unpaid-")
        index.setdefault("".join(c for c in contract.upper() if c.isalnum()), set()).add(contract)
    return index


async def register_payment_once(client: Client, contract_id: str, payment: Payment) -> tuple[CaseStatus, bool]:
    """Register a payment; returns (status, applied_now). A known ``payment_id`` is not re-sent."""
    status = await get_status(client, contract_id)
    if payment.payment_id in status.payment_ids:
        return status, False
    return await register_payment(client, contract_id, payment), True


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


def visibility_query(
    stage: str | None = None,
    portfolio: str | None = None,
    extra: str | None = None,
    deadline_before: datetime | None = None,
) -> str:
    clauses = [f"WorkflowType = '{WORKFLOW_NAME}'"]
    if deadline_before is not None:
        if deadline_before.tzinfo is None:
            raise CaseError(422, "deadline_before must carry a UTC offset", "deadline_before")
        clauses.append(f"NextDeadline <= '{deadline_before.isoformat()}'")
    for name, value in (("RecoveryStage", stage), ("Portfolio", portfolio)):
        if value:
            if not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise CaseError(422, f"invalid {name} filter {value!r}", name)
            clauses.append(f"{name} = '{value}'")
    if extra:
        clauses.append(extra)
    return " AND ".join(clauses)


async def list_cases(
    client: Client,
    *,
    stage: str | None = None,
    portfolio: str | None = None,
    page_size: int = 50,
    next_page_token: bytes | None = None,
    deadline_before: datetime | None = None,
) -> tuple[list[dict[str, Any]], bytes | None]:
    query = visibility_query(stage, portfolio, deadline_before=deadline_before)
    it = client.list_workflows(query, page_size=page_size, next_page_token=next_page_token)
    await it.fetch_next_page()
    items = []
    for wf in it.current_page or []:
        attrs = wf.typed_search_attributes
        next_deadline = attrs.get(sa.NEXT_DEADLINE)
        items.append(
            {
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
            }
        )
    return items, it.next_page_token
