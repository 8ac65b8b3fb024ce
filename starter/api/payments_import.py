"""``POST /v1/payments/import``: a bank statement (ISO 20022 camt.054 or camt.053) in,
its credits matched to recovery cases by the remittance reference and booked as payments.

Each credit's ``payment_id`` is the bank's reference, so re-posting the same statement
books nothing twice (``already_booked``). Credits in another currency than the cases'
(EUR) are reported ``not_matchable``; credits with no known contract reference are
``unmatched``. The body is the XML file itself (``application/xml``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from starter import bank_matching
from starter.api.auth import require_role
from starter.api.health import BANK_CREDITS
from starter.cases import CaseError

router = APIRouter(prefix="/v1/payments", tags=["payments"])
MAX_BYTES = 50 * 1024 * 1024


@router.post("/import", openapi_extra={"requestBody": {"content": {"application/xml": {"schema": {"type": "string"}}}}})
async def import_payments(
    request: Request,
    currency: str = Query("EUR", pattern="^[A-Z]{3}$", description="currency the recovery cases are booked in"),
    _role: str = Depends(require_role("backoffice")),
) -> dict:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise CaseError(413, f"statement larger than {MAX_BYTES // (1024 * 1024)} MiB: split it", "body")
    if not body.strip():
        raise CaseError(422, "empty body: send the camt.054/053 XML file", "body")
    try:
        report = await bank_matching.import_statement(
            request.app.state.temporal,
            bytes(body),
            currency=currency,
            on_result=lambda r: BANK_CREDITS.labels(r.outcome).inc(),
        )
    except bank_matching.StatementError as err:
        raise CaseError(422, f"not a readable camt.054/053 statement: {err}", "body") from err
    return report
