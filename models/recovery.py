"""State of one recovery case and the messages between the workflow and its activities.

``RecoveryState`` is the single object the workflow mutates, the ``status`` query reads
and ``continue_as_new`` carries (STYLE.md, safe_message_handlers).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from models.letters import LetterContext
from models.payloads import CaseStatus, HistoryEntry, LetterInfo, Payment, Stage, UnpaidCase
from models.policy import RecoveryPolicy


class RecoveryState(BaseModel):
    case: UnpaidCase
    policy: RecoveryPolicy | None = None
    case_ref: str = ""  # short id of the first run: keeps letter ids unique across cases
    stage: Stage = Stage.GRACE
    # Compressed demo clock: virtual = anchor + (real - anchor) * compression.
    clock_anchor: datetime | None = None
    fees: Decimal = Decimal("0")
    due_during_suspension: Decimal = Decimal("0")
    not_covered_by_notice: Decimal = Decimal("0")
    amount_paid: Decimal = Decimal("0")
    applied_payment_ids: list[str] = Field(default_factory=list)
    reminders_sent: int = 0
    reminder_only: bool = False
    notice_attempt: int = 0
    notice_letter_id: str | None = None
    notice_channel_override: str | None = None
    notice_sent_at: datetime | None = None
    suspension_at: datetime | None = None
    termination_at: datetime | None = None
    reinstatement_at: datetime | None = None
    stated_suspension_at: datetime | None = None
    stated_termination_at: datetime | None = None
    held_from_stage: Stage | None = None
    hold_reason: str | None = None
    hold_started_at: datetime | None = None
    hold_until: datetime | None = None
    delivery_problem: str | None = None
    notice_blocked: str | None = None  # set when even the paper notice failed for good
    letters: list[LetterInfo] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    synced_history: int = 0
    pending_payments: list[Payment] = Field(default_factory=list)
    pending_acknowledgements: list[str] = Field(default_factory=list)  # partial payment ids
    litigation_ref: str | None = None
    closed: bool = False


class CaseSync(BaseModel):
    """Read-model upsert plus the new audit-trail entries since the last sync."""

    workflow_id: str
    run_id: str
    status: CaseStatus
    first_seq: int
    events: list[HistoryEntry]


class PaymentEntry(BaseModel):
    contract_id: str
    currency: str
    payment: Payment


class LitigationRequest(BaseModel):
    workflow_id: str
    status: CaseStatus
    case: UnpaidCase
    summary: LetterContext
