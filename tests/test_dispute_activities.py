"""Dispute activities in isolation (ActivityEnvironment): each write is idempotent, so a
retried activity never records an event, an alert or a letter twice."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from pathlib import Path

from pypdf import PdfReader
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from models.calendar import PARIS
from models.disputes import (
    AlertInput,
    ClockKind,
    Decision,
    DisputeAlert,
    DisputeCategory,
    DisputeConfig,
    DisputeFollowUp,
    DisputeLetterRecord,
    DisputeLetterRequest,
    DisputeRecord,
    DisputeStage,
    DisputeStatus,
    DisputeSync,
    FollowUpInput,
    HistoryEntry,
    Member,
    Outcome,
    dispute_clocks,
)
from models.letters import Mediator
from models.tables import CaseEvent
from tests.test_dispute_helpers import make_activities

RECEIVED = datetime(2026, 12, 18, 10, tzinfo=PARIS)


def _status(history: list[str]) -> DisputeStatus:
    return DisputeStatus(
        dispute_id="D-1",
        stage=DisputeStage.ACKNOWLEDGED,
        category=DisputeCategory.PREMIUMS,
        member=Member(name="Paul Leroy"),
        contract_id="CT-1",
        received_at=RECEIVED,
        subject="Cotisation",
        channel="email",
        clocks=dispute_clocks(RECEIVED, DisputeConfig()),
        history=[HistoryEntry(at=RECEIVED, kind=k) for k in history],
    )


def test_sync_writes_each_history_entry_once(tmp_path: Path) -> None:
    acts, engine = make_activities(tmp_path)
    env = ActivityEnvironment()
    first = DisputeSync(workflow_id="dispute-D-1", run_id="r1", status=_status(["received", "triaged"]), from_seq=0)
    env.run(acts.sync, first)
    env.run(acts.sync, first)  # a retry
    env.run(
        acts.sync, DisputeSync(workflow_id="dispute-D-1", run_id="r1", status=_status(["acknowledged"]), from_seq=2)
    )
    with Session(engine) as db:
        events = db.exec(select(CaseEvent).order_by(CaseEvent.seq)).all()
        record = db.get(DisputeRecord, "D-1")
    assert [(e.seq, e.kind) for e in events] == [
        (0, "dispute.received"),
        (1, "dispute.triaged"),
        (2, "dispute.acknowledged"),
    ]
    assert record.stage == "acknowledged" and record.category == "premiums" and record.contract_id == "CT-1"
    assert record.status_json["clocks"][0]["last_day"] == "2026-12-31"


def test_alert_and_follow_up_are_recorded_once(tmp_path: Path) -> None:
    acts, engine = make_activities(tmp_path)
    env = ActivityEnvironment()
    alert = AlertInput(
        dispute_id="D-1",
        workflow_id="dispute-D-1",
        kind="threshold",
        clock=ClockKind.ANSWER,
        threshold=0.75,
        recipient="Julie",
        message="75 %",
        at=datetime.now(timezone.utc),
        dedup_key="D-1:answer:0.75",
    )
    env.run(acts.alert, alert)
    env.run(acts.alert, alert)
    follow = FollowUpInput(
        dispute_id="D-1", follow_up_id="D-1-mediation", action="payer", at=datetime.now(timezone.utc)
    )
    env.run(acts.follow_up, follow)
    env.run(acts.follow_up, follow)
    with Session(engine) as db:
        assert len(db.exec(select(DisputeAlert)).all()) == 1
        assert len(db.exec(select(DisputeFollowUp)).all()) == 1


def test_rejection_letter_names_the_mediator_and_is_archived_once(tmp_path: Path) -> None:
    acts, engine = make_activities(tmp_path)
    env = ActivityEnvironment()
    req = DisputeLetterRequest(
        letter_id="D-1-dispute_answer-1",
        kind="dispute_answer",
        dispute_id="D-1",
        member=Member(name="Paul Leroy", email="paul@example.org"),
        contract_id="CT-1",
        received_on=date(2026, 12, 18),
        subject="Cotisation",
        category=DisputeCategory.PREMIUMS,
        letter_date=date(2027, 1, 20),
        answer_due_by=date(2027, 2, 16),
        decision=Decision(outcome=Outcome.REJECTED, text="Le montant appelé est conforme au contrat."),
        handler_name="Julie Martin",
        mediator=Mediator(
            name="La Médiation de l'Assurance",
            address="TSA 50110, 75441 Paris Cedex 09",
            website="https://www.mediation-assurance.org",
        ),
    )
    ref = env.run(acts.letter, req)
    pdf = Path(ref.path).read_bytes()
    assert hashlib.sha256(pdf).hexdigest() == ref.sha256
    text = "".join(p.extract_text() for p in PdfReader(ref.path).pages)
    assert "Médiation de l'Assurance" in text or "Médiation de l’Assurance" in text
    assert "mediation-assurance.org" in text and "conforme au contrat" in text
    again = env.run(acts.letter, req)  # a retry returns the archived letter, not a new one
    assert (again.sha256, again.path) == (ref.sha256, ref.path)
    with Session(engine) as db:
        assert len(db.exec(select(DisputeLetterRecord)).all()) == 1
