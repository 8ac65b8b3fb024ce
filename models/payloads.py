"""Payload models exchanged with the workflows: the public Temporal contract.

Every model here crosses the wire through ``pydantic_data_converter``: amounts are
decimal strings, dates ISO-8601, datetimes ISO-8601 with offset. Field names are the
contract of ``shared/DESIGN.md``; add fields freely, never rename.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Money = Decimal


class Regime(StrEnum):
    """Legal regime of the contract (DOMAIN.md §1.2)."""

    IARD = "iard"  # Code des assurances L113-3
    MUTUELLE_INDIVIDUELLE = "mutuelle_individuelle"  # Code de la mutualité L221-7
    MUTUELLE_COLLECTIVE = "mutuelle_collective"  # Code de la mutualité L221-8
    PREVOYANCE_COLLECTIVE = "prevoyance_collective"  # CSS L932-9
    VIE = "vie"  # Code des assurances L132-20


class Stage(StrEnum):
    GRACE = "grace"
    NOTICE_SENT = "notice_sent"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    LITIGATION = "litigation"
    REGULARIZED = "regularized"
    REINSTATED = "reinstated"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


CLOSED_STAGES = frozenset(
    {Stage.LITIGATION, Stage.REGULARIZED, Stage.REINSTATED, Stage.CANCELLED, Stage.TERMINATED}
)


class UnpaidKind(StrEnum):
    """Total unpaid: nothing paid over the period; partial: part of it was paid."""

    TOTAL = "total"
    PARTIAL = "partial"


class LetterKind(StrEnum):
    REMINDER = "reminder"  # relance amiable
    FORMAL_NOTICE = "formal_notice"  # mise en demeure
    SUSPENSION_NOTICE = "suspension_notice"  # information de suspension
    TERMINATION = "termination"  # lettre de résiliation
    REINSTATEMENT = "reinstatement"  # confirmation de remise en vigueur
    LITIGATION_SUMMARY = "litigation_summary"  # dossier de transmission au contentieux
    PAYMENT_ACKNOWLEDGEMENT = "payment_acknowledgement"  # accusé de paiement partiel


class Channel(StrEnum):
    LRE = "lre"  # lettre recommandée électronique (qualified)
    ERE = "ere"  # envoi recommandé électronique simple
    EMAIL = "email"
    PAPER = "paper"  # lettre recommandée papier (LRAR)


class LreEventKind(StrEnum):
    DEPOSITED = "deposited"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NEGLIGENCE = "negligence"
    BOUNCED = "bounced"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=False)


class Address(_Model):
    line1: str = Field(min_length=1)
    line2: str | None = None
    postal_code: str = Field(min_length=1)
    city: str = Field(min_length=1)
    country: str = "FR"


class Policyholder(_Model):
    name: str = Field(min_length=1)
    email: str | None = None
    lre_consent: bool = False
    address: Address | None = None
    is_professional: bool = False


class Installment(_Model):
    """An instalment (échéance) that fell due and is unpaid."""

    due_date: date
    amount: Money = Field(gt=0)


class UnpaidCase(_Model):
    """Workflow input: one contract in recovery."""

    contract_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    regime: Regime
    portfolio: str = "default"
    policyholder: Policyholder
    installments: list[Installment] = Field(min_length=1)
    period_premium: Money = Field(gt=0)
    paid_on_period: Money = Field(default=Decimal("0"), ge=0)
    currency: str = "EUR"
    compulsory_membership: bool = False
    # Life insurance (L132-20): a surrender value means reduction instead of termination.
    has_surrender_value: bool = False
    # Collective contracts: the notice goes to the employer (L221-8).
    employer: Policyholder | None = None

    @field_validator("currency")
    @classmethod
    def _upper(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError("currency must be an ISO 4217 code such as EUR")
        return v.upper()

    @property
    def unpaid_kind(self) -> UnpaidKind:
        return UnpaidKind.PARTIAL if self.paid_on_period > 0 else UnpaidKind.TOTAL

    @property
    def arrears(self) -> Decimal:
        return sum((i.amount for i in self.installments), Decimal("0"))

    @property
    def first_due_date(self) -> date:
        return min(i.due_date for i in self.installments)


class Payment(_Model):
    payment_id: str = Field(min_length=1, max_length=128)
    amount: Money
    currency: str | None = None
    received_at: datetime
    method: str | None = None
    reference: str | None = None


class LreEvent(_Model):
    letter_id: str
    event: LreEventKind
    occurred_at: datetime
    proof_url: str | None = None
    provider_id: str | None = None
    tracking_number: str | None = None  # paper registered letter (n° de recommandé)


class Hold(_Model):
    reason: str = Field(min_length=1)
    until: datetime | None = None


class Cancel(_Model):
    reason: str = Field(min_length=1)


class Deadline(_Model):
    kind: str
    at: datetime


class LetterInfo(_Model):
    letter_id: str
    kind: LetterKind
    channel: Channel
    status: str
    sha256: str | None = None
    sent_at: datetime | None = None
    provider_id: str | None = None
    attempt: int = 1
    proofs: dict[str, str] = Field(default_factory=dict)


class HistoryEntry(_Model):
    at: datetime
    kind: str
    detail: str = ""


class CaseStatus(_Model):
    contract_id: str
    stage: Stage
    unpaid_kind: UnpaidKind
    regime: Regime
    portfolio: str
    currency: str
    amount_due: Money
    amount_paid: Money
    balance: Money
    notice_sent_at: datetime | None = None
    suspension_at: datetime | None = None
    termination_at: datetime | None = None
    reinstatement_at: datetime | None = None
    next_deadline: Deadline | None = None
    letters: list[LetterInfo] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    payment_ids: list[str] = Field(default_factory=list)  # applied payments (idempotency)
    held_from_stage: Stage | None = None
    hold_reason: str | None = None
    compressed_clock: float = 1.0
    closed: bool = False


class DepositRecorded(_Model):
    """Result of sending a letter: the provider's certified deposit (preuve de dépôt)."""

    letter_id: str
    provider_id: str | None
    channel: Channel
    sha256: str
    deposited_at: datetime | None  # None for paper until the mailroom records the deposit
    status: Literal["deposited", "awaiting_deposit"]
    proof_url: str | None = None
