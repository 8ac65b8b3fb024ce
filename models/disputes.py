"""Complaints and disputes (réclamations et litiges, DOMAIN.md §2): payloads and tables.

Payload models cross the wire (pydantic data converter); the ``table=True`` models at the
end of this module are the read models and registers written by the dispute activities,
never passed between workflows and activities.

The SLA arithmetic (which fraction of a clock has elapsed, when a threshold is crossed)
is pure and lives here; the legal dates themselves come from ``models.calendar``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.calendar import (
    add_months,
    delay_last_day,
    dispute_deadlines,
    end_of_day,
    paris_date,
)
from models.letters import Mediator


class DisputeCategory(StrEnum):
    """Categories seen in mutuals (DOMAIN.md §2)."""

    REIMBURSEMENT = "reimbursement"  # remboursement contesté
    GUARANTEES = "guarantees"  # interprétation des garanties
    TERMINATION = "termination"  # résiliation
    PREMIUMS = "premiums"  # cotisations, hausses de cotisation
    SERVICE_QUALITY = "service_quality"  # qualité de service
    OTHER = "other"


CATEGORY_LABELS_FR = {
    DisputeCategory.REIMBURSEMENT: "Remboursement contesté",
    DisputeCategory.GUARANTEES: "Interprétation des garanties",
    DisputeCategory.TERMINATION: "Résiliation",
    DisputeCategory.PREMIUMS: "Cotisations",
    DisputeCategory.SERVICE_QUALITY: "Qualité de service",
    DisputeCategory.OTHER: "Autre",
}


class DisputeStage(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"  # assigned to a handler
    AWAITING_INFORMATION = "awaiting_information"  # information requested from the member
    ANSWERED = "answered"
    CONTESTED = "contested"  # the member contests the answer
    IN_MEDIATION = "in_mediation"
    MEDIATION_COMPLETED = "mediation_completed"
    CLOSED = "closed"


class Outcome(StrEnum):
    UPHELD = "upheld"  # réclamation fondée
    PARTIALLY_UPHELD = "partially_upheld"
    REJECTED = "rejected"


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"  # done before the deadline
    PAUSED = "paused"


class ClockKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"  # 10 jours ouvrables (ACPR 2022-R-01)
    ANSWER = "answer"  # min(r + 60 days, r + 2 months)
    MEDIATION = "mediation"  # 90 days from the complete file (R612-5)


class MediatorOpinion(StrEnum):
    FAVOURABLE = "favourable"  # favourable to the member
    PARTIALLY_FAVOURABLE = "partially_favourable"
    UNFAVOURABLE = "unfavourable"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- configuration -----------------------------------------------------------------------


class DisputeConfig(_Model):
    """Every delay and rule of the disputes process, defaults from DOMAIN.md §2."""

    ack_working_days: int = Field(default=10, ge=1)
    answer_days: int | None = Field(default=60, ge=1)
    answer_months: int | None = Field(default=2, ge=1)
    alsace_moselle: bool = False
    # The regulator's clock does not stop while the member is asked for information.
    pause_while_awaiting_information: bool = False
    alert_thresholds: list[float] = Field(default_factory=lambda: [0.75, 0.9])
    escalate_on_breach: bool = True
    supervisor: str = "superviseur-reclamations"
    ethics_committee: str = "comite-ethique"
    # A dispute in these categories holds the recovery case of its contract until closed.
    hold_recovery_categories: list[DisputeCategory] = Field(default_factory=lambda: [DisputeCategory.PREMIUMS])
    mediation_opinion_days: int = Field(default=90, ge=1)  # R612-5
    mediation_window_months: int = Field(default=12, ge=1)  # L612-2: at most 1 year
    mediator: Mediator = Field(default_factory=Mediator)
    # After closure the workflow waits this long for a satisfaction score, then completes.
    satisfaction_window_days: int = Field(default=30, ge=0)
    send_letters: bool = True
    portfolio: str = "default"
    # Continue-as-new when the server suggests it, or after this many history events
    # (a bound for very long disputes; None: only on the server's suggestion).
    continue_as_new_after_events: int | None = Field(default=None, ge=50)

    @field_validator("alert_thresholds")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < t < 1 for t in v):
            raise ValueError("alert thresholds are fractions of the delay, strictly between 0 and 1")
        return sorted(set(v))

    @model_validator(mode="after")
    def _answer_delay(self) -> DisputeConfig:
        if self.answer_days is None and self.answer_months is None:
            raise ValueError("answer_days or answer_months is required")
        return self


# --- input and messages --------------------------------------------------------------------


class Member(_Model):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    member_id: str | None = Field(default=None, max_length=64)


class Dispute(_Model):
    """Workflow input: one complaint (réclamation)."""

    dispute_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    member: Member
    contract_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    received_at: datetime
    channel: str = Field(default="email", min_length=1, max_length=32)
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    category: DisputeCategory | None = None  # triaged automatically when absent
    complex: bool = False  # complex or sensitive cases go to the ethics committee
    sensitive: bool = False
    config: DisputeConfig = Field(default_factory=DisputeConfig)
    # Set by the workflow itself when it continues as new; never by a caller.
    carry_over: DisputeCarryOver | None = None

    @field_validator("received_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("received_at must carry a UTC offset")
        return v


class Handler(_Model):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None


class Acknowledge(_Model):
    note: str | None = None


class CustomerMessage(_Model):
    text: str = Field(min_length=1, max_length=20000)
    attachments: list[str] = Field(default_factory=list)
    provides_information: bool = True  # answers a pending information request


class InformationRequest(_Model):
    text: str = Field(min_length=1, max_length=5000)


class Decision(_Model):
    outcome: Outcome
    text: str = Field(min_length=1, max_length=20000)
    amount: Decimal | None = None
    currency: str = "EUR"

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v <= 0:
            raise ValueError("amount must be positive")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Decision:
        if self.outcome is Outcome.REJECTED and self.amount is not None:
            raise ValueError("a rejection grants no amount")
        return self


class CustomerReply(_Model):
    accepts: bool
    text: str | None = None


class EscalationLevel(StrEnum):
    SUPERVISOR = "supervisor"
    ETHICS_COMMITTEE = "ethics_committee"


class Escalation(_Model):
    reason: str = Field(min_length=1, max_length=5000)
    level: EscalationLevel = EscalationLevel.SUPERVISOR


class EthicsOpinion(_Model):
    text: str = Field(min_length=1, max_length=20000)


class MediationReferral(_Model):
    # R612-5: the 90-day clock runs from the complete file; defaults to the referral instant.
    file_complete_at: datetime | None = None
    mediator: Mediator | None = None
    note: str | None = None


class MediationOutcome(_Model):
    opinion: MediatorOpinion
    text: str = Field(min_length=1, max_length=20000)
    amount: Decimal | None = None
    insurer_accepts: bool = True  # the opinion is not binding (R612-5)
    member_accepts: bool | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v <= 0:
            raise ValueError("amount must be positive")
        return v


class Satisfaction(_Model):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5000)


class Close(_Model):
    reason: str = Field(default="closed by the handler", min_length=1, max_length=5000)


class CategoryCorrection(_Model):
    category: DisputeCategory
    by: str = Field(default="operator", min_length=1)
    reason: str | None = None


# --- status ------------------------------------------------------------------------------


class TermWeight(_Model):
    term: str
    weight: float


class TriageResult(_Model):
    category: DisputeCategory
    confidence: float
    top_terms: list[TermWeight] = Field(default_factory=list)
    model_version: str
    probabilities: dict[str, float] = Field(default_factory=dict)


class SlaClock(_Model):
    kind: ClockKind
    started_at: datetime
    last_day: date  # the Paris date the clock is due by (24:00)
    base_due_at: datetime
    due_at: datetime  # base_due_at plus any pause
    state: SlaState = SlaState.ON_TRACK
    completed_at: datetime | None = None
    paused_since: datetime | None = None
    paused_seconds: float = 0.0
    alerts_fired: list[float] = Field(default_factory=list)
    breach_recorded: bool = False

    @property
    def open(self) -> bool:
        return self.completed_at is None


class HistoryEntry(_Model):
    at: datetime
    kind: str
    detail: str = ""


class LetterRef(_Model):
    letter_id: str
    kind: str
    sha256: str
    path: str | None = None
    at: datetime


class MediationState(_Model):
    workflow_id: str
    mediator: Mediator
    referred_at: datetime
    file_complete_at: datetime
    opinion_due_at: datetime
    outcome: MediationOutcome | None = None
    follow_up_id: str | None = None


class RecoveryLink(_Model):
    workflow_id: str
    held: bool = False
    resumed: bool = False
    note: str = ""


class EthicsReferral(_Model):
    referred_at: datetime
    reason: str
    opinion: str | None = None
    opinion_at: datetime | None = None


class DisputeStatus(_Model):
    """What ``status()`` returns: the whole state of the dispute."""

    dispute_id: str
    stage: DisputeStage
    category: DisputeCategory
    category_source: str = "given"  # given | triage | operator
    triage: TriageResult | None = None
    member: Member
    contract_id: str | None = None
    received_at: datetime
    subject: str
    channel: str
    handler: Handler | None = None
    clocks: list[SlaClock] = Field(default_factory=list)
    sla_status: SlaState = SlaState.ON_TRACK
    sla_due_at: datetime | None = None
    decision: Decision | None = None
    decided_at: datetime | None = None
    member_accepts: bool | None = None
    escalated: bool = False
    ethics: EthicsReferral | None = None
    mediation: MediationState | None = None
    mediation_possible_until: date | None = None
    recovery: RecoveryLink | None = None
    letters: list[LetterRef] = Field(default_factory=list)
    satisfaction: Satisfaction | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class DisputeCarryOver(_Model):
    """The whole state a DisputeWorkflow carries through ``continue_as_new``."""

    status: DisputeStatus
    synced: int  # history entries already written to the audit trail
    stage_before_info: DisputeStage = DisputeStage.ACKNOWLEDGED
    runs: int = 1


Dispute.model_rebuild()


# --- child workflow payloads -------------------------------------------------------------


class MediationInput(_Model):
    dispute_id: str
    parent_workflow_id: str
    member: Member
    contract_id: str | None = None
    category: DisputeCategory
    mediator: Mediator
    referred_at: datetime
    file_complete_at: datetime
    opinion_days: int = 90


class MediationStatus(_Model):
    dispute_id: str
    mediator: Mediator
    file_complete_at: datetime
    opinion_due_at: datetime
    overdue: bool = False
    outcome: MediationOutcome | None = None
    follow_up_id: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class MediationResult(_Model):
    outcome: MediationOutcome
    received_at: datetime
    overdue: bool
    follow_up_id: str | None = None


# --- activity payloads -------------------------------------------------------------------


class TriageRequest(_Model):
    dispute_id: str
    subject: str
    description: str


class DisputeSync(_Model):
    """The read model; ``status.history`` holds only the entries not yet written, the
    first of them at position ``from_seq`` of the workflow's history."""

    workflow_id: str
    run_id: str
    status: DisputeStatus
    from_seq: int


class AlertInput(_Model):
    dispute_id: str
    workflow_id: str
    kind: str  # threshold | breach | escalation | ethics_committee
    clock: ClockKind | None = None
    threshold: float | None = None
    due_at: datetime | None = None
    recipient: str
    message: str
    at: datetime
    dedup_key: str


class SatisfactionInput(_Model):
    dispute_id: str
    category: DisputeCategory
    score: int
    comment: str | None = None
    received_at: datetime
    closed_at: datetime | None
    at: datetime


class CorrectionInput(_Model):
    dispute_id: str
    subject: str
    description: str
    predicted: DisputeCategory | None
    corrected: DisputeCategory
    by: str
    reason: str | None = None
    model_version: str | None = None
    at: datetime


class FollowUpInput(_Model):
    dispute_id: str
    follow_up_id: str
    action: str
    amount: Decimal | None = None
    currency: str = "EUR"
    at: datetime


class DisputeLetterRequest(_Model):
    """What the letter activity needs; the ``DisputeLetterContext`` is built from it."""

    letter_id: str
    kind: str  # dispute_acknowledgement | dispute_answer | mediation_referral
    dispute_id: str
    member: Member
    contract_id: str | None = None
    received_on: date
    subject: str
    category: DisputeCategory
    letter_date: date
    answer_due_by: date | None = None
    decision: Decision | None = None
    handler_name: str | None = None
    mediator: Mediator
    portfolio: str = "default"


# --- pure SLA functions ------------------------------------------------------------------


def utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)


def new_clock(kind: ClockKind, started_at: datetime, last_day: date) -> SlaClock:
    due = end_of_day(last_day)
    return SlaClock(kind=kind, started_at=started_at, last_day=last_day, base_due_at=due, due_at=due)


def dispute_clocks(received_at: datetime, config: DisputeConfig) -> list[SlaClock]:
    """The acknowledgement and answer clocks, from the Paris date of receipt (not counted)."""
    deadlines = dispute_deadlines(
        paris_date(received_at),
        ack_working_days=config.ack_working_days,
        answer_days=config.answer_days,
        answer_months=config.answer_months,
        alsace_moselle=config.alsace_moselle,
    )
    return [
        new_clock(ClockKind.ACKNOWLEDGEMENT, received_at, deadlines.acknowledge_by),
        new_clock(ClockKind.ANSWER, received_at, deadlines.answer_by),
    ]


def mediation_last_day(file_complete_at: datetime, opinion_days: int = 90) -> date:
    """R612-5: the mediator's opinion is due 90 days after the complete file (not shifted)."""
    return delay_last_day(paris_date(file_complete_at), opinion_days, shift=False)


def mediation_possible_until(received_at: datetime, months: int = 12) -> date:
    """L612-2: mediation may be asked at most one year after the written complaint."""
    return add_months(paris_date(received_at), months)


def threshold_instant(clock: SlaClock, fraction: float) -> datetime:
    """When ``fraction`` of the clock's time has elapsed (pauses push it back)."""
    return clock.started_at + (clock.due_at - clock.started_at) * fraction


def clock_state(clock: SlaClock, now: datetime, at_risk_from: float) -> SlaState:
    """On track / at risk / breached for an open clock; met or breached for a closed one."""
    if clock.completed_at is not None:
        return SlaState.MET if clock.completed_at < clock.due_at else SlaState.BREACHED
    if now >= clock.due_at:
        return SlaState.BREACHED
    if clock.paused_since is not None:
        return SlaState.PAUSED
    if now >= threshold_instant(clock, at_risk_from):
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


_SEVERITY = [SlaState.MET, SlaState.ON_TRACK, SlaState.PAUSED, SlaState.AT_RISK, SlaState.BREACHED]


def overall_sla(clocks: list[SlaClock]) -> tuple[SlaState, datetime | None]:
    """The worst state over the open clocks (else over all), and the next open due instant."""
    open_clocks = [c for c in clocks if c.open]
    pool = open_clocks or clocks
    worst = max((c.state for c in pool), key=_SEVERITY.index, default=SlaState.ON_TRACK)
    if not open_clocks and worst is not SlaState.BREACHED:
        worst = SlaState.MET
    due = min((c.due_at for c in open_clocks), default=None)
    return worst, due


def pause_clock(clock: SlaClock, now: datetime) -> None:
    if clock.open and clock.paused_since is None:
        clock.paused_since = now


def unpause_clock(clock: SlaClock, now: datetime) -> None:
    if clock.paused_since is not None:
        clock.paused_seconds += (now - clock.paused_since).total_seconds()
        clock.paused_since = None
        clock.due_at = clock.base_due_at + timedelta(seconds=clock.paused_seconds)


# --- tables (activity side only) -----------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DisputeRecord(SQLModel, table=True):
    """Read model of one dispute, for the portal and the KPIs."""

    __tablename__ = "disputes"

    dispute_id: str = SQLField(primary_key=True)
    workflow_id: str
    run_id: str | None = None
    member_name: str
    member_email: str | None = None
    member_id: str | None = SQLField(default=None, index=True)
    contract_id: str | None = SQLField(default=None, index=True)
    category: str = SQLField(index=True)
    category_source: str = "given"
    stage: str = SQLField(index=True)
    sla_status: str = SQLField(index=True)
    sla_due_at: datetime | None = None
    handler: str | None = None
    received_at: datetime
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    outcome: str | None = None
    escalated: bool = False
    ethics_committee: bool = False
    in_mediation: bool = False
    mediation_opinion: str | None = None
    closed_at: datetime | None = None
    satisfaction: int | None = None
    status_json: dict = SQLField(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = SQLField(default_factory=_utcnow)


class DisputeAlert(SQLModel, table=True):
    """Every SLA alert, escalation and ethics-committee referral (notification log)."""

    __tablename__ = "dispute_alerts"
    __table_args__ = (UniqueConstraint("dedup_key"),)

    id: int | None = SQLField(default=None, primary_key=True)
    dedup_key: str
    dispute_id: str = SQLField(index=True)
    kind: str
    clock: str | None = None
    threshold: float | None = None
    due_at: datetime | None = None
    recipient: str
    message: str
    at: datetime
    recorded_at: datetime = SQLField(default_factory=_utcnow)


class DisputeSatisfaction(SQLModel, table=True):
    __tablename__ = "dispute_satisfaction"

    dispute_id: str = SQLField(primary_key=True)
    category: str = SQLField(index=True)
    score: int
    comment: str | None = None
    handling_days: float | None = None
    at: datetime


class TriageCorrectionRecord(SQLModel, table=True):
    """An operator's category correction: a labelled example for the next training."""

    __tablename__ = "triage_corrections"

    id: int | None = SQLField(default=None, primary_key=True)
    dispute_id: str = SQLField(index=True)
    text: str
    predicted: str | None = None
    corrected: str
    by: str
    reason: str | None = None
    model_version: str | None = None
    at: datetime
    used_for_training: bool = False


class DisputeFollowUp(SQLModel, table=True):
    """An action to carry out after a mediator's opinion favourable to the member."""

    __tablename__ = "dispute_follow_ups"

    follow_up_id: str = SQLField(primary_key=True)
    dispute_id: str = SQLField(index=True)
    action: str
    amount: Decimal | None = SQLField(default=None, max_digits=14, decimal_places=2)
    currency: str = "EUR"
    status: str = "open"
    at: datetime


class DisputeLetterRecord(SQLModel, table=True):
    __tablename__ = "dispute_letters"

    letter_id: str = SQLField(primary_key=True)
    dispute_id: str = SQLField(index=True)
    kind: str
    file_path: str
    sha256: str
    created_at: datetime = SQLField(default_factory=_utcnow)
