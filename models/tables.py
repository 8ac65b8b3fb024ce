"""SQLModel tables: the read models and the audit trail. Written only by activities.

Never pass these ``table=True`` models between workflows and activities: the payload
models of ``models.payloads`` cross the wire, these stay on the activity side.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CaseRecord(SQLModel, table=True):
    """Read model of one recovery case (the latest run for a contract)."""

    __tablename__ = "cases"

    contract_id: str = Field(primary_key=True)
    workflow_id: str
    run_id: str | None = None
    portfolio: str = Field(index=True)
    regime: str
    stage: str = Field(index=True)
    unpaid_kind: str
    currency: str = "EUR"
    amount_due: Decimal = Field(default=Decimal("0"), max_digits=14, decimal_places=2)
    amount_paid: Decimal = Field(default=Decimal("0"), max_digits=14, decimal_places=2)
    balance: Decimal = Field(default=Decimal("0"), max_digits=14, decimal_places=2)
    notice_sent_at: datetime | None = None
    suspension_at: datetime | None = None
    termination_at: datetime | None = None
    reinstatement_at: datetime | None = None
    next_deadline_kind: str | None = None
    next_deadline_at: datetime | None = Field(default=None, index=True)
    closed: bool = False
    opened_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CaseEvent(SQLModel, table=True):
    """Append-only audit trail. ``seq`` is the position in the workflow's history, so a
    retried activity re-writing the same entries is a no-op."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("workflow_id", "run_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(index=True)
    run_id: str
    seq: int
    contract_id: str | None = Field(default=None, index=True)
    at: datetime
    kind: str
    detail: str = ""
    recorded_at: datetime = Field(default_factory=utcnow)


class LetterRecord(SQLModel, table=True):
    __tablename__ = "letters"

    letter_id: str = Field(primary_key=True)
    contract_id: str = Field(index=True)
    kind: str
    channel: str
    attempt: int = 1
    status: str = "rendering"  # rendering → sending → deposited → accepted/refused/…
    file_path: str | None = None
    sha256: str | None = None
    provider_id: str | None = Field(default=None, index=True)
    deposited_at: datetime | None = None
    proofs: dict = Field(default_factory=dict, sa_column=Column(JSON))
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PaymentRecord(SQLModel, table=True):
    """Payments ledger: a ``payment_id`` is applied at most once."""

    __tablename__ = "payments"

    payment_id: str = Field(primary_key=True)
    contract_id: str = Field(index=True)
    amount: Decimal = Field(max_digits=14, decimal_places=2)
    currency: str = "EUR"
    received_at: datetime
    method: str | None = None
    reference: str | None = None
    recorded_at: datetime = Field(default_factory=utcnow)


class LitigationHandoff(SQLModel, table=True):
    """Dossier handed to litigation (contentieux) with its evidence pack."""

    __tablename__ = "litigation_handoffs"

    contract_id: str = Field(primary_key=True)
    workflow_id: str
    balance: Decimal = Field(max_digits=14, decimal_places=2)
    currency: str = "EUR"
    summary_path: str | None = None
    evidence: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
