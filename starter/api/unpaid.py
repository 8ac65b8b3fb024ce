"""Recovery cases over HTTP: open, read, pay, hold, resume, cancel, list."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import Decimal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.service import RPCError, RPCStatusCode

from models.payloads import Cancel, CaseStatus, Hold, Payment, UnpaidCase
from starter import cases
from starter.api.auth import require_role

router = APIRouter(prefix="/v1/unpaid-cases", tags=["unpaid cases"])


def _error(err: cases.CaseError) -> JSONResponse:
    body: dict = {"detail": err.message}
    if err.field:
        body["errors"] = [{"field": err.field, "reason": err.message}]
    return JSONResponse(status_code=err.status, content=body)


class OpenedCase(BaseModel):
    contract_id: str
    workflow_id: str
    run_id: str | None


class PaymentIn(BaseModel):
    payment_id: str = Field(min_length=1, max_length=128)
    amount: Decimal
    currency: str | None = None
    received_at: datetime | None = None
    method: str | None = None
    reference: str | None = None


class CaseList(BaseModel):
    items: list[dict]
    next_page_token: str | None


@router.post("", status_code=201, response_model=OpenedCase)
async def open_case(case: UnpaidCase, request: Request, _role: str = Depends(require_role("backoffice"))):
    try:
        handle = await cases.open_case(request.app.state.temporal, case, request.app.state.settings.temporal_task_queue)
    except cases.CaseError as err:
        return _error(err)
    return OpenedCase(contract_id=case.contract_id, workflow_id=handle.id, run_id=handle.result_run_id)


@router.get("", response_model=CaseList)
async def list_cases(
    request: Request,
    stage: str | None = Query(None, description="RecoveryStage, e.g. suspended"),
    portfolio: str | None = Query(None),
    page_size: int = Query(50, ge=1, le=500),
    page_token: str | None = Query(None),
    deadline_before: datetime | None = Query(
        None, description="only cases whose next deadline is at or before this instant"
    ),
    _role: str = Depends(require_role("manager", "operator", "backoffice")),
):
    try:
        token = base64.b64decode(page_token.encode(), altchars=b"-_", validate=True) if page_token else None
    except (ValueError, UnicodeEncodeError):
        return _error(cases.CaseError(422, "page_token is not valid", "page_token"))
    try:
        items, nxt = await cases.list_cases(
            request.app.state.temporal,
            stage=stage,
            portfolio=portfolio,
            page_size=page_size,
            next_page_token=token,
            deadline_before=deadline_before,
        )
    except cases.CaseError as err:
        return _error(err)
    except RPCError as err:
        if token and err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            return _error(cases.CaseError(422, "page_token is not valid (it expires with the query)", "page_token"))
        raise
    return CaseList(items=items, next_page_token=base64.urlsafe_b64encode(nxt).decode() if nxt else None)


@router.get("/{contract_id}", response_model=CaseStatus)
async def get_case(
    contract_id: str, request: Request, _role: str = Depends(require_role("manager", "operator", "backoffice"))
):
    try:
        return await cases.get_status(request.app.state.temporal, contract_id)
    except cases.CaseError as err:
        return _error(err)


@router.post("/{contract_id}/payments", response_model=CaseStatus)
async def register_payment(
    contract_id: str, body: PaymentIn, request: Request, _role: str = Depends(require_role("backoffice"))
):
    payment = Payment(
        **body.model_dump(exclude={"received_at"}), received_at=body.received_at or datetime.now(timezone.utc)
    )
    try:
        return await cases.register_payment(request.app.state.temporal, contract_id, payment)
    except cases.CaseError as err:
        return _error(err)


@router.post("/{contract_id}/hold", status_code=202)
async def hold(contract_id: str, body: Hold, request: Request, _role: str = Depends(require_role("operator"))):
    try:
        await cases.hold(request.app.state.temporal, contract_id, body)
    except cases.CaseError as err:
        return _error(err)
    return {"contract_id": contract_id, "accepted": "hold"}


@router.post("/{contract_id}/resume", status_code=202)
async def resume(contract_id: str, request: Request, _role: str = Depends(require_role("operator"))):
    try:
        await cases.resume(request.app.state.temporal, contract_id)
    except cases.CaseError as err:
        return _error(err)
    return {"contract_id": contract_id, "accepted": "resume"}


@router.post("/{contract_id}/cancel", status_code=202)
async def cancel(contract_id: str, body: Cancel, request: Request, _role: str = Depends(require_role("operator"))):
    try:
        await cases.cancel(request.app.state.temporal, contract_id, body)
    except cases.CaseError as err:
        return _error(err)
    return {"contract_id": contract_id, "accepted": "cancel"}
