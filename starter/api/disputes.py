"""Disputes over HTTP: open a complaint, read its status, act on it, KPIs.

- ``POST /v1/disputes`` (backoffice, operator) starts ``DisputeWorkflow`` ``dispute-{id}``.
- ``GET /v1/disputes/{dispute_id}`` (manager, operator, backoffice) queries ``status``.
- ``POST /v1/disputes/{dispute_id}/{action}`` sends the message ``action`` (an update: the
  answer is the new status, or a 409 with the reason the workflow refused it).
- ``GET /v1/disputes?stage=&category=&sla=`` lists disputes from Temporal visibility
  (search attributes ``DisputeStage``, ``DisputeCategory``, ``SlaStatus``, ``SlaDueAt``).
- ``GET /v1/disputes/kpis`` (manager): resolution, handling time, satisfaction and SLA
  breaches per category, from the read model.

The Temporal-facing functions (``open_dispute``, ``dispute_status``, ``act``) are shared
with the CLI (``starter/cli_disputes.py``) so both validate the same way.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import search_attributes as sa
from models.disputes import (
    Acknowledge,
    CategoryCorrection,
    Close,
    CustomerMessage,
    CustomerReply,
    Decision,
    Dispute,
    DisputeCategory,
    DisputeRecord,
    DisputeStage,
    DisputeStatus,
    Escalation,
    EthicsOpinion,
    Handler,
    InformationRequest,
    MediationOutcome,
    MediationReferral,
    Satisfaction,
    SlaState,
)
from starter.api.auth import require_role

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])

_HANDLER_SIDE = ("operator",)
_MEMBER_SIDE = ("operator", "backoffice")  # the member portal is a back-office system


@dataclass(frozen=True)
class Action:
    update: str
    model: type[BaseModel]
    roles: tuple[str, ...]
    summary: str


ACTIONS: dict[str, Action] = {
    "acknowledge": Action("acknowledge", Acknowledge, _HANDLER_SIDE, "accusé de réception (10 jours ouvrables)"),
    "assign": Action("assign", Handler, _HANDLER_SIDE, "assign a handler {name, email?}"),
    "customer_message": Action(
        "customer_message", CustomerMessage, _MEMBER_SIDE, "a message from the member {text, attachments?}"
    ),
    "request_information": Action(
        "request_information", InformationRequest, _HANDLER_SIDE, "ask the member for information {text}"
    ),
    "respond": Action(
        "respond", Decision, _HANDLER_SIDE, "the answer {outcome: upheld|partially_upheld|rejected, text, amount?}"
    ),
    "customer_reply": Action(
        "customer_reply", CustomerReply, _MEMBER_SIDE, "the member accepts or contests the answer {accepts}"
    ),
    "escalate": Action("escalate", Escalation, _HANDLER_SIDE, "escalate {reason, level: supervisor|ethics_committee}"),
    "ethics_opinion": Action("ethics_opinion", EthicsOpinion, _HANDLER_SIDE, "the ethics committee's opinion {text}"),
    "refer_to_mediation": Action(
        "refer_to_mediation", MediationReferral, _MEMBER_SIDE, "refer to the mediator {file_complete_at?}"
    ),
    "mediation_outcome": Action(
        "mediation_outcome", MediationOutcome, _HANDLER_SIDE, "the mediator's opinion {opinion, text, amount?}"
    ),
    "satisfaction": Action("satisfaction", Satisfaction, _MEMBER_SIDE, "satisfaction after closure {score: 1..5}"),
    "close": Action("close", Close, _HANDLER_SIDE, "close the dispute {reason?}"),
    "correct_category": Action(
        "correct_category", CategoryCorrection, _HANDLER_SIDE, "correct the triaged category {category}"
    ),
}


class DisputeError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.errors = errors or ([{"field": field, "reason": message}] if field else [])

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"detail": self.message}
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(status_code=self.status, content=body)


def workflow_id(dispute_id: str) -> str:
    return f"dispute-{dispute_id}"


def validate(model: type[BaseModel], payload: Any) -> BaseModel:
    """Parse a payload into a message model; a mismatch is a 422 with field and reason."""
    try:
        return model.model_validate(payload if payload is not None else {})
    except ValidationError as err:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]} for e in err.errors()]
        raise DisputeError(422, "invalid input", errors=errors) from None


async def open_dispute(client: Client, dispute: Dispute, task_queue: str) -> WorkflowHandle:
    try:
        return await client.start_workflow(
            "DisputeWorkflow",
            dispute,
            id=workflow_id(dispute.dispute_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise DisputeError(409, f"dispute {dispute.dispute_id} already exists", "dispute_id") from None


def _not_found(err: RPCError, dispute_id: str) -> DisputeError | None:
    if err.status is RPCStatusCode.NOT_FOUND:
        if "already completed" in err.message:
            return DisputeError(409, f"dispute {dispute_id} is closed and its workflow has completed")
        return DisputeError(404, f"unknown dispute {dispute_id}")
    return None


async def dispute_status(client: Client, dispute_id: str) -> DisputeStatus:
    handle = client.get_workflow_handle(workflow_id(dispute_id))
    try:
        return await handle.query("status", result_type=DisputeStatus)
    except RPCError as err:
        raise (_not_found(err, dispute_id) or err) from None


async def act(client: Client, dispute_id: str, action: str, payload: Any) -> DisputeStatus:
    spec = ACTIONS.get(action)
    if spec is None:
        raise DisputeError(404, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}", "action")
    message = validate(spec.model, payload)
    handle = client.get_workflow_handle(workflow_id(dispute_id))
    try:
        return await handle.execute_update(spec.update, message, result_type=DisputeStatus)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        raise DisputeError(409, reason, action) from None
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        # Servers word this differently ("workflow not found", "already completed",
        # "update … not found"): ask for the workflow itself.
        raise await _missing_or_completed(client, dispute_id) from None


async def _missing_or_completed(client: Client, dispute_id: str) -> DisputeError:
    # The raw describe call: only the execution status is needed, no attribute decoding.
    try:
        desc = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id(dispute_id)),
            )
        )
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return DisputeError(404, f"unknown dispute {dispute_id}")
        raise
    status = WorkflowExecutionStatus.Name(desc.workflow_execution_info.status)
    status = status.removeprefix("WORKFLOW_EXECUTION_STATUS_").lower()
    return DisputeError(409, f"dispute {dispute_id} is closed and its workflow has {status}")


def visibility_query(stage: str | None, category: str | None, sla: str | None) -> str:
    """Only enum values reach the query string (no injection through the filters)."""
    parts = ['WorkflowType = "DisputeWorkflow"']
    for name, value, enum in (
        ("stage", stage, DisputeStage),
        ("category", category, DisputeCategory),
        ("sla", sla, SlaState),
    ):
        if value is None:
            continue
        try:
            enum(value)
        except ValueError:
            raise DisputeError(
                422, f"unknown {name} {value!r}; expected one of {', '.join(e.value for e in enum)}", name
            ) from None
    if stage:
        parts.append(f'{sa.DISPUTE_STAGE.name} = "{stage}"')
    if category:
        parts.append(f'{sa.DISPUTE_CATEGORY.name} = "{category}"')
    if sla:
        parts.append(f'{sa.SLA_STATUS.name} = "{sla}"')
    return " AND ".join(parts)


async def list_disputes(
    client: Client,
    *,
    stage: str | None = None,
    category: str | None = None,
    sla: str | None = None,
    page_size: int = 50,
    next_page_token: bytes | None = None,
) -> tuple[list[dict[str, Any]], bytes | None]:
    it = client.list_workflows(
        visibility_query(stage, category, sla), page_size=page_size, next_page_token=next_page_token
    )
    await it.fetch_next_page()
    items = []
    for wf in it.current_page or []:
        attrs = wf.typed_search_attributes
        due = attrs.get(sa.SLA_DUE_AT)
        items.append(
            {
                "dispute_id": wf.id.removeprefix("dispute-"),
                "workflow_id": wf.id,
                "run_id": wf.run_id,
                "status": wf.status.name.lower() if wf.status else None,
                "stage": attrs.get(sa.DISPUTE_STAGE),
                "category": attrs.get(sa.DISPUTE_CATEGORY),
                "sla_status": attrs.get(sa.SLA_STATUS),
                "sla_due_at": due.isoformat() if due else None,
                "started_at": wf.start_time.isoformat() if wf.start_time else None,
            }
        )
    return items, it.next_page_token


# ---------------------------------------------------------------------- HTTP


class OpenedDispute(BaseModel):
    dispute_id: str
    workflow_id: str
    run_id: str | None


class CategoryKpi(BaseModel):
    category: str
    disputes: int
    closed: int
    resolution_rate: float
    mean_handling_days: float | None
    mean_satisfaction: float | None
    sla_breaches: int
    escalated: int
    in_mediation: int


@router.post("", status_code=201, response_model=OpenedDispute)
async def post_dispute(
    dispute: Dispute, request: Request, _role: str = Depends(require_role("backoffice", "operator"))
):
    try:
        handle = await open_dispute(request.app.state.temporal, dispute, request.app.state.settings.temporal_task_queue)
    except DisputeError as err:
        return err.response()
    return OpenedDispute(dispute_id=dispute.dispute_id, workflow_id=handle.id, run_id=handle.result_run_id)


class DisputeList(BaseModel):
    items: list[dict[str, Any]]
    next_page_token: str | None


@router.get("", response_model=DisputeList)
async def get_disputes(
    request: Request,
    stage: str | None = Query(None, description="DisputeStage, e.g. in_progress"),
    category: str | None = Query(None, description="DisputeCategory, e.g. premiums"),
    sla: str | None = Query(None, description="SlaStatus: on_track, at_risk, breached, met, paused"),
    page_size: int = Query(50, ge=1, le=500),
    page_token: str | None = Query(None),
    _role: str = Depends(require_role("manager", "operator", "backoffice")),
):
    try:
        token = base64.urlsafe_b64decode(page_token) if page_token else None
    except (ValueError, binascii.Error):
        return DisputeError(422, "page_token is not valid", "page_token").response()
    try:
        items, nxt = await list_disputes(
            request.app.state.temporal,
            stage=stage,
            category=category,
            sla=sla,
            page_size=page_size,
            next_page_token=token,
        )
    except DisputeError as err:
        return err.response()
    return DisputeList(items=items, next_page_token=base64.urlsafe_b64encode(nxt).decode() if nxt else None)


@router.get("/kpis", response_model=list[CategoryKpi])
async def kpis(request: Request, _role: str = Depends(require_role("manager"))):
    with Session(request.app.state.engine) as db:
        rows = db.exec(select(DisputeRecord)).all()
    return compute_kpis(rows)


def compute_kpis(rows: list[DisputeRecord]) -> list[CategoryKpi]:
    by_category: dict[str, list[DisputeRecord]] = {}
    for row in rows:
        by_category.setdefault(row.category, []).append(row)
    out = []
    for category, items in sorted(by_category.items()):
        closed = [r for r in items if r.closed_at]
        days = [(r.closed_at - r.received_at).total_seconds() / 86400 for r in closed]
        scores = [r.satisfaction for r in items if r.satisfaction]
        out.append(
            CategoryKpi(
                category=category,
                disputes=len(items),
                closed=len(closed),
                resolution_rate=round(len(closed) / len(items), 4),
                mean_handling_days=round(sum(days) / len(days), 2) if days else None,
                mean_satisfaction=round(sum(scores) / len(scores), 2) if scores else None,
                sla_breaches=sum(
                    1 for r in items for c in (r.status_json or {}).get("clocks", []) if c.get("state") == "breached"
                ),
                escalated=sum(1 for r in items if r.escalated),
                in_mediation=sum(1 for r in items if r.in_mediation),
            )
        )
    return out


@router.get("/{dispute_id}", response_model=DisputeStatus)
async def get_dispute(
    dispute_id: str, request: Request, _role: str = Depends(require_role("manager", "operator", "backoffice"))
):
    try:
        return await dispute_status(request.app.state.temporal, dispute_id)
    except DisputeError as err:
        return err.response()


@router.post(
    "/{dispute_id}/{action}",
    response_model=DisputeStatus,
    description="Actions: " + "; ".join(f"`{k}` — {v.summary}" for k, v in ACTIONS.items()),
)
async def post_action(
    dispute_id: str,
    action: str,
    request: Request,
    payload: dict[str, Any] | None = Body(default=None),
    role: str = Depends(require_role("operator", "backoffice")),
):
    spec = ACTIONS.get(action)
    if spec is None:
        return DisputeError(
            404, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}", "action"
        ).response()
    if role != "admin" and role not in spec.roles:
        return JSONResponse(
            status_code=403,
            content={"detail": f"role '{role}' may not {action}; required: {' or '.join(spec.roles)}"},
        )
    try:
        return await act(request.app.state.temporal, dispute_id, action, payload)
    except DisputeError as err:
        return err.response()
