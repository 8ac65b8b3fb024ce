"""LRE provider callbacks and the mailroom's paper deposits → ``lre_event`` signals.

``POST /v1/lre/webhook`` — the provider posts a status change (AR24-style JSON
``{"event_id", "delivery_id", "occurred_at", "mail": {…}}``), signed
``X-LRE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``.
- 401: missing / malformed / wrong signature, or signed more than 5 minutes ago;
- 409: the same delivery (``delivery_id``) presented again: a replay;
- 422: signed but malformed body;
- 404: a mail we have no letter for; 503: Temporal unreachable (the provider retries);
- 200: applied, ignored (no outcome yet) or duplicate (the same mail status was already
  applied: the provider's retries every 15 minutes up to 48 times are no-ops).

``POST /v1/letters/{letter_id}/paper-deposit`` — the mailroom deposited a paper
registered letter; the tracking number and deposit instant start the legal clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, delete

from activities.lre_client import LreClient
from activities.sending import (
    LetterEventApplier,
    LetterSender,
    UnknownLetter,
    signal_lre_event,
)
from models.lre import (
    FINAL_STATUSES,
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE,
    LreWebhookDelivery,
    ProviderMail,
    SignatureError,
    verify_webhook,
)
from starter.api.auth import require_role

log = logging.getLogger(__name__)
router = APIRouter(tags=["lre"])


class WebhookBody(BaseModel):
    event_id: str | None = None
    delivery_id: str = Field(min_length=8, max_length=128)
    occurred_at: datetime | None = None
    mail: dict[str, Any]


class PaperDeposit(BaseModel):
    tracking_number: str = Field(min_length=4, max_length=64)
    deposited_at: datetime


def _lre(request: Request) -> LreClient:
    lre = getattr(request.app.state, "lre", None)
    if lre is None:
        lre = LreClient.from_settings(request.app.state.settings)
        request.app.state.lre = lre
    return lre


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def _first_delivery(engine, delivery_id: str, signed_at: int) -> bool:
    """Remember a delivery id; ``False`` if it was seen already (a replay). Ids older than
    twice the signature tolerance are forgotten: such a delivery is rejected as stale."""
    horizon = datetime.now(UTC) - 2 * SIGNATURE_TOLERANCE
    with Session(engine) as s:
        s.exec(delete(LreWebhookDelivery).where(LreWebhookDelivery.signed_at < horizon))
        s.add(
            LreWebhookDelivery(
                delivery_id=delivery_id, signed_at=datetime.fromtimestamp(signed_at, UTC)
            )
        )
        try:
            s.commit()
        except IntegrityError:
            return False
    return True


@router.post("/v1/lre/webhook", summary="LRE provider status callback (HMAC-signed)")
async def lre_webhook(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    engine = request.app.state.engine
    raw = await request.body()
    try:
        signed_at = verify_webhook(
            settings.lre_webhook_secret.get_secret_value(),
            raw,
            request.headers.get(SIGNATURE_HEADER),
            now=datetime.now(UTC),
        )
    except SignatureError as exc:
        log.warning("LRE webhook rejected: %s", exc)
        return _error(401, f"invalid webhook signature: {exc}")
    try:
        body = WebhookBody.model_validate_json(raw)
        mail = ProviderMail.from_ar24(body.mail)
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        errors = (
            [{"field": ".".join(map(str, e["loc"])), "reason": e["msg"]} for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [{"field": "mail", "reason": repr(exc)}]
        )
        return _error(422, "malformed webhook body", errors=errors)
    if not _first_delivery(engine, body.delivery_id, signed_at):
        log.warning("LRE webhook replay rejected: delivery %s", body.delivery_id)
        return _error(
            409, f"replayed delivery rejected: delivery {body.delivery_id} was already received"
        )
    if mail.status not in FINAL_STATUSES:
        return JSONResponse({"status": "ignored", "reason": f"mail status {mail.status.value}"})

    applier = LetterEventApplier(engine, _lre(request), settings.letters_dir)
    rec = applier.find_letter(mail)
    if rec is None:
        return _error(
            404,
            f"unknown letter: no letter for provider mail {mail.id} "
            f"(ref_client {mail.ref_client!r})",
        )
    key = applier.claim(mail, source="webhook", provider_event_id=body.event_id)
    if key is None:
        return JSONResponse(
            {
                "status": "duplicate",
                "letter_id": rec.letter_id,
                "event": mail.event.value if mail.event else None,
            }
        )
    try:
        applied = await applier.apply(key, mail, rec)
    except BaseException:
        applier.release(key)
        raise
    temporal = request.app.state.temporal
    try:
        if temporal is None:
            raise RuntimeError("no Temporal client")
        signalled = await signal_lre_event(temporal, applied.contract_id, applied.event)
    except Exception as exc:
        applier.release(key)
        log.error("LRE webhook for %s: Temporal unavailable: %r", rec.letter_id, exc)
        return _error(503, "Temporal unavailable: the event was not applied, retry later")
    applier.commit(applied)
    return JSONResponse(
        {
            "status": "processed",
            "letter_id": rec.letter_id,
            "event": applied.event.event.value,
            "signalled": signalled,
        }
    )


@router.post(
    "/v1/letters/{letter_id}/paper-deposit",
    summary="Record the mailroom's deposit of a paper registered letter",
)
async def paper_deposit(
    letter_id: str,
    deposit: PaperDeposit,
    request: Request,
    _role: str = Depends(require_role("backoffice", "operator")),
) -> JSONResponse:
    if deposit.deposited_at.tzinfo is None:
        return _error(
            422,
            "invalid input",
            errors=[{"field": "deposited_at", "reason": "must carry a UTC offset"}],
        )
    settings = request.app.state.settings
    sender = LetterSender(
        request.app.state.engine, _lre(request), settings.letters_dir, renderer_factory=_no_renderer
    )
    try:
        event = sender.record_paper_deposit(
            letter_id, deposit.tracking_number, deposit.deposited_at
        )
    except UnknownLetter as exc:
        return _error(404, str(exc))
    except ValueError as exc:
        return _error(409, str(exc))
    contract_id = sender._load(letter_id).contract_id
    try:
        signalled = await signal_lre_event(request.app.state.temporal, contract_id, event)
    except Exception as exc:
        log.error("paper deposit of %s: Temporal unavailable: %r", letter_id, exc)
        return _error(
            503, "Temporal unavailable: deposit recorded, signal not sent; retry the call"
        )
    return JSONResponse(
        {"status": "recorded", "signalled": signalled, "event": event.model_dump(mode="json")}
    )


def _no_renderer():
    raise RuntimeError("recording a deposit never renders")
