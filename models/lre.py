"""Registered electronic mail (LRE, CPCE L100 / R53) at the provider's edge: pure code.

- Provider models (``ProviderSendRequest``, ``ProviderMail``) in the AR24-compatible
  vocabulary (DOMAIN.md §1.5) and their mapping to our ``LreEvent`` kinds.
- Provider errors, named so a Temporal retry policy can tell them apart. They subclass
  ``ApplicationError`` so an activity that lets one escape is retried (or not) correctly
  without a wrapper.
- Webhook signature: ``X-LRE-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is
  HMAC-SHA256(secret, ``f"{t}."`` + raw body). Same construction for the simulator
  (signing) and the receiver (verifying), so they cannot drift apart.
- Channel choice (LRE / ERE / paper) from the recipient's e-mail and consent.
- SQLModel tables for the webhook receiver's idempotency and the archived proofs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel
from temporalio.exceptions import ApplicationError

from models.payloads import Channel, LreEventKind, Policyholder

SIGNATURE_HEADER = "X-LRE-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)


# --------------------------------------------------------------------------- statuses


class ProviderStatus(StrEnum):
    """AR24 mail statuses."""

    WAITING = "waiting"  # deposited, the recipient has not acted yet (15-day window)
    AR = "AR"  # accepted: accusé de réception
    REFUSED = "refused"
    NEGLIGENCE = "negligence"  # not claimed within 15 days
    BOUNCED = "bounced"  # could not be notified: not a valid notice (DOMAIN.md §1.1)


FINAL_STATUSES = frozenset(
    {ProviderStatus.AR, ProviderStatus.REFUSED, ProviderStatus.NEGLIGENCE, ProviderStatus.BOUNCED}
)

_EVENT_OF_STATUS = {
    ProviderStatus.AR: LreEventKind.ACCEPTED,
    ProviderStatus.REFUSED: LreEventKind.REFUSED,
    ProviderStatus.NEGLIGENCE: LreEventKind.NEGLIGENCE,
    ProviderStatus.BOUNCED: LreEventKind.BOUNCED,
}

# Our proof kinds (LetterRecord.proofs keys) per provider status.
PROOF_KIND_OF_STATUS = {
    ProviderStatus.WAITING: "deposit",
    ProviderStatus.AR: "receipt",
    ProviderStatus.REFUSED: "refusal",
    ProviderStatus.NEGLIGENCE: "negligence",
    ProviderStatus.BOUNCED: "bounce",
}

# AR24 field names of the proof URLs.
AR24_PROOF_FIELDS = {
    "deposit": "proof_ev_url",
    "receipt": "proof_ar_url",
    "refusal": "proof_rf_url",
    "negligence": "proof_ng_url",
    "bounce": "proof_bc_url",
}

# LetterRecord.status per event kind.
LETTER_STATUS_OF_EVENT = {
    LreEventKind.DEPOSITED: "deposited",
    LreEventKind.ACCEPTED: "accepted",
    LreEventKind.REFUSED: "refused",
    LreEventKind.NEGLIGENCE: "negligence",
    LreEventKind.BOUNCED: "bounced",
}


def event_of_status(status: ProviderStatus | str) -> LreEventKind | None:
    """Provider status → our event kind; ``None`` for ``waiting`` (nothing happened yet)."""
    return _EVENT_OF_STATUS.get(ProviderStatus(status))


# --------------------------------------------------------------------------- models


def _aware(value: datetime) -> datetime:
    # AR24 prints Paris wall-clock times without offset; anything naive is read as Paris.
    # ZoneInfo is built lazily: this module is imported by workflow code (sandbox).
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo("Europe/Paris"))


class ProviderSendRequest(BaseModel):
    """One registered letter to deposit (``POST mail/``)."""

    letter_id: str = Field(min_length=1)  # → ref_client: our stable idempotency key
    contract_id: str = Field(min_length=1)  # → ref_dossier
    to_email: str
    to_lastname: str = ""
    to_firstname: str = ""
    to_company: str = ""
    dest_statut: str = "particulier"  # particulier | professionnel
    eidas: bool = True  # True: qualified LRE; False: ERE simple (no identity check)
    content: str = ""  # the e-mail text the recipient sees before opening the letter
    pdf: bytes
    filename: str = "lettre.pdf"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


class ProviderMail(BaseModel):
    """A mail as the provider knows it (``GET mail/?id=``)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    ref_client: str | None = None
    ref_dossier: str | None = None
    status: ProviderStatus
    deposited_at: datetime  # the qualified timestamp of the deposit proof
    status_at: datetime | None = None  # when the current status was reached
    eidas: bool = True
    proofs: dict[str, str] = Field(default_factory=dict)  # deposit/receipt/refusal/… → URL
    content_sha256: str | None = None

    @field_validator("deposited_at", "status_at")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)

    @classmethod
    def from_ar24(cls, data: dict) -> ProviderMail:
        """Parse an AR24-style ``result`` object."""
        proofs = {kind: data[f] for kind, f in AR24_PROOF_FIELDS.items() if data.get(f)}
        return cls(
            id=str(data["id"]),
            ref_client=data.get("ref_client") or None,
            ref_dossier=data.get("ref_dossier") or None,
            status=data["status"],
            deposited_at=data["date"],
            status_at=data.get("status_date") or None,
            eidas=bool(int(data.get("eidas", 1))),
            proofs=proofs,
            content_sha256=data.get("sha256") or None,
        )

    @property
    def event(self) -> LreEventKind | None:
        return event_of_status(self.status)

    @property
    def current_proof_kind(self) -> str:
        return PROOF_KIND_OF_STATUS[self.status]

    @property
    def current_proof_url(self) -> str | None:
        return self.proofs.get(self.current_proof_kind)


# --------------------------------------------------------------------------- errors


class LreError(ApplicationError):
    """Any failure talking to the LRE provider."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(
            message,
            code,
            type=type(self).__name__,
            non_retryable=non_retryable,
            next_retry_delay=next_retry_delay,
        )
        self.code = code


class LreTemporaryError(LreError):
    """Timeout, connection failure, 5xx: retry with backoff. The outcome of a send that
    failed this way is *unknown*: look the letter up before sending again."""

    def __init__(
        self, message: str, *, code: str = "temporary", next_retry_delay: timedelta | None = None
    ) -> None:
        super().__init__(message, code=code, next_retry_delay=next_retry_delay)


class LreMaintenance(LreTemporaryError):
    """The provider answered that it is in maintenance: nothing was done, retry later."""

    def __init__(self, message: str = "LRE provider in maintenance") -> None:
        super().__init__(message, code="maintenance")


class LreRateLimited(LreTemporaryError):
    """HTTP 429: nothing was done; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "LRE provider rate limit") -> None:
        super().__init__(
            f"{message} (retry after {retry_after:g}s)",
            code="rate_limited",
            next_retry_delay=timedelta(seconds=retry_after),
        )
        self.retry_after = retry_after


class LrePermanentError(LreError):
    """The provider refused the request for a reason a retry cannot fix (invalid
    recipient, bad attachment, unknown mail…). ``code`` is the provider's slug."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}", code=code, non_retryable=True)
        self.provider_message = message


class LreNotFound(LrePermanentError):
    def __init__(self, message: str = "unknown mail") -> None:
        super().__init__("not_found", message)


# --------------------------------------------------------------------------- signatures


class SignatureError(ValueError):
    """The webhook signature header is missing, malformed, wrong or stale."""


def sign_webhook(secret: str, body: bytes, timestamp: int) -> str:
    """Header value for ``X-LRE-Signature``: ``t=<unix>,v1=<hex hmac-sha256>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def parse_signature(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    ts: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
        if key == "t":
            if not value.isdigit():
                raise SignatureError(f"malformed timestamp in {SIGNATURE_HEADER}")
            ts = int(value)
        elif key == "v1":
            sigs.append(value)
    if ts is None or not sigs:
        raise SignatureError(f"{SIGNATURE_HEADER} must be 't=<unix>,v1=<hex>'")
    return ts, sigs


def verify_webhook(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: datetime,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> int:
    """Check the signature over the raw body (constant-time) and its freshness.

    Returns the signed timestamp. Raises ``SignatureError`` with a clear reason."""
    ts, sigs = parse_signature(header)
    expected = sign_webhook(secret, body, ts).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, s) for s in sigs):
        raise SignatureError("signature does not match the body")
    age = now.timestamp() - ts
    if abs(age) > tolerance.total_seconds():
        raise SignatureError(
            f"stale delivery: signed {int(age)}s ago, tolerance {int(tolerance.total_seconds())}s"
        )
    return ts


# --------------------------------------------------------------------------- channels

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def has_usable_email(person: Policyholder) -> bool:
    return bool(person.email and _EMAIL.match(person.email))


def choose_channel(
    recipient: Policyholder, preferred: Channel, *, electronic_bounced: bool = False
) -> Channel:
    """The channel a letter can legally and practically use.

    LRE needs an e-mail and, for a non-professional recipient, their prior consent to
    electronic delivery (CPCE L100); otherwise the paper registered letter. ERE simple
    and e-mail only need an address. After a bounce, paper (DOMAIN.md §1.1)."""
    if preferred is Channel.PAPER or electronic_bounced or not has_usable_email(recipient):
        return Channel.PAPER
    if preferred is Channel.LRE and not (recipient.lre_consent or recipient.is_professional):
        return Channel.PAPER
    return preferred


def split_name(name: str) -> tuple[str, str]:
    """(first name, last name) from a display name; the last word is the last name."""
    parts = name.strip().split()
    if len(parts) <= 1:
        return "", name.strip()
    return " ".join(parts[:-1]), parts[-1]


# --------------------------------------------------------------------------- tables


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LreWebhookEvent(SQLModel, table=True):
    """One provider status change applied to our side (webhook or reconciliation).

    The key is ``{provider_id}:{status}``: a mail reaches each final status once, so the
    provider's 48 retries and its duplicates all map to the same row (no-op)."""

    __tablename__ = "lre_webhook_events"

    event_key: str = SQLField(primary_key=True)
    provider_id: str = SQLField(index=True)
    provider_event_id: str | None = None
    letter_id: str | None = SQLField(default=None, index=True)
    status: str
    source: str = "webhook"  # webhook | reconciliation
    state: str = "processing"  # processing → done
    received_at: datetime = SQLField(default_factory=_utcnow)
    processed_at: datetime | None = None


class LreWebhookDelivery(SQLModel, table=True):
    """Delivery ids already seen: the same signed delivery presented twice is a replay."""

    __tablename__ = "lre_webhook_deliveries"

    delivery_id: str = SQLField(primary_key=True)
    signed_at: datetime
    received_at: datetime = SQLField(default_factory=_utcnow)


class LetterProof(SQLModel, table=True):
    """An archived proof file (deposit, receipt, refusal, negligence, bounce)."""

    __tablename__ = "letter_proofs"

    letter_id: str = SQLField(primary_key=True)
    kind: str = SQLField(primary_key=True)
    url: str
    file_path: str | None = None
    sha256: str | None = None
    fetched_at: datetime | None = None
    error: str | None = None
