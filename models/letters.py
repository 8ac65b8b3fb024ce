"""What a letter needs to be rendered: computed by the workflow, rendered by an activity.

The workflow fills every legal figure (amounts, dates) from the legal calendar so the
letter states exactly what the workflow will do; templates only format.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from models.payloads import (
    Channel,
    Installment,
    LetterKind,
    Policyholder,
    Regime,
    UnpaidKind,
)


class LetterContext(BaseModel):
    letter_id: str
    kind: LetterKind
    channel: Channel
    contract_id: str
    portfolio: str
    regime: Regime
    unpaid_kind: UnpaidKind
    currency: str = "EUR"
    recipient: Policyholder  # the employer for collective contracts
    policyholder_name: str  # the insured / member the contract belongs to
    letter_date: date  # Paris date printed on the letter
    installments: list[Installment] = Field(default_factory=list)
    first_due_date: date | None = None
    arrears: Decimal = Decimal("0")  # unpaid instalments covered by the notice
    fees: Decimal = Decimal("0")  # frais de recouvrement (never the notice's own cost, R113-1)
    due_during_suspension: Decimal = Decimal("0")
    amount_paid: Decimal = Decimal("0")
    amount_due: Decimal = Decimal("0")  # what stops the procedure / reinstates cover
    balance: Decimal = Decimal("0")
    period_premium: Decimal | None = None
    paid_on_period: Decimal | None = None
    suspension_at: datetime | None = None
    termination_at: datetime | None = None
    reinstatement_at: datetime | None = None
    notice_sent_at: datetime | None = None
    announce_termination: bool = True
    compulsory_membership: bool = False
    life_outcome: str | None = None  # "termination" | "reduction" (L132-20)
    payment_reference: str | None = None  # printed reference the bank matcher looks for
    demo_clock: bool = False  # compressed clock: the letter says DÉMONSTRATION
    attempt: int = 1


class RenderedLetter(BaseModel):
    pdf: bytes
    sha256: str
    page_count: int | None = None


class Mediator(BaseModel):
    """The consumer mediator the member can refer to (Code de la consommation L612-2)."""

    name: str = "Médiation de la Mutualité"
    address: str = "255 rue de Vaugirard, 75719 Paris Cedex 15"
    website: str = "https://www.mediateur-mutualite.fr"
    email: str | None = None


class DisputeLetterContext(BaseModel):
    """Letters of the disputes process: accusé de réception, réponse, information médiation."""

    letter_id: str
    kind: str  # "dispute_acknowledgement" | "dispute_answer" | "mediation_referral"
    dispute_id: str
    member_name: str
    member_email: str | None = None
    member_id: str | None = None
    member_address: list[str] = Field(default_factory=list)
    contract_id: str | None = None
    received_on: date
    subject: str
    category: str | None = None
    letter_date: date
    answer_due_by: date | None = None
    outcome: str | None = None  # "upheld" | "partially_upheld" | "rejected"
    decision_text: str | None = None
    amount: Decimal | None = None
    currency: str = "EUR"
    handler_name: str | None = None
    mediator: Mediator = Field(default_factory=Mediator)
    demo_clock: bool = False
