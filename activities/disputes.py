"""Activities of the disputes process: triage, read model and audit trail, alerts,
letters, satisfaction, triage corrections and mediation follow-ups.

Every write is idempotent (primary keys, unique dedup keys, history sequence numbers), so
a retried activity never records an alert, a letter or an event twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity

from activities.db import make_engine, session
from models.disputes import (
    CATEGORY_LABELS_FR,
    AlertInput,
    ClockKind,
    CorrectionInput,
    DisputeAlert,
    DisputeFollowUp,
    DisputeLetterRecord,
    DisputeLetterRequest,
    DisputeRecord,
    DisputeSatisfaction,
    DisputeSync,
    FollowUpInput,
    LetterRef,
    SatisfactionInput,
    TriageCorrectionRecord,
    TriageRequest,
    TriageResult,
)
from models.letters import DisputeLetterContext
from models.policy import PolicyBook, load_policies
from models.settings import Settings
from models.tables import CaseEvent
from models.triage import TriageModel, complaint_text, default_model

log = logging.getLogger("precontentieux.disputes")


class DisputeActivities:
    def __init__(
        self,
        engine: Engine,
        letters_dir: Path,
        policies: PolicyBook,
        *,
        triage_model: Callable[[], TriageModel] = default_model,
        renderer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.letters_dir = Path(letters_dir)
        self.policies = policies
        self._triage_model = triage_model
        self._renderer_factory = renderer_factory or _default_renderer
        self._renderer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DisputeActivities:
        return cls(
            make_engine(settings.resolved_database_url),
            settings.letters_dir,
            load_policies(settings.policies_file),
        )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.triage,
            self.sync,
            self.alert,
            self.letter,
            self.satisfaction,
            self.correction,
            self.follow_up,
        ]

    # ------------------------------------------------------------------ triage
    @activity.defn(name="dispute_triage")
    def triage(self, req: TriageRequest) -> TriageResult:
        result = self._triage_model().predict(req.subject, req.description)
        log.info(
            "dispute %s triaged as %s (%.2f) by %s",
            req.dispute_id,
            result.category.value,
            result.confidence,
            result.model_version,
        )
        return result

    # ------------------------------------------------------------------ read model
    @activity.defn(name="dispute_sync")
    def sync(self, req: DisputeSync) -> None:
        st = req.status
        clocks = {c.kind: c for c in st.clocks}
        ack, answer = clocks.get(ClockKind.ACKNOWLEDGEMENT), clocks.get(ClockKind.ANSWER)
        with session(self.engine) as db:
            rec = db.get(DisputeRecord, st.dispute_id) or DisputeRecord(
                dispute_id=st.dispute_id,
                workflow_id=req.workflow_id,
                member_name=st.member.name,
                category=st.category.value,
                stage=st.stage.value,
                sla_status=st.sla_status.value,
                received_at=st.received_at,
            )
            rec.run_id = req.run_id
            rec.member_name, rec.member_email, rec.member_id = st.member.name, st.member.email, st.member.member_id
            rec.contract_id = st.contract_id
            rec.category, rec.category_source = st.category.value, st.category_source
            rec.stage, rec.sla_status, rec.sla_due_at = st.stage.value, st.sla_status.value, st.sla_due_at
            rec.handler = st.handler.name if st.handler else None
            rec.acknowledged_at = ack.completed_at if ack else None
            rec.answered_at = answer.completed_at if answer and st.decision else None
            rec.outcome = st.decision.outcome.value if st.decision else None
            rec.escalated = st.escalated
            rec.ethics_committee = st.ethics is not None
            rec.in_mediation = st.mediation is not None
            rec.mediation_opinion = (
                st.mediation.outcome.opinion.value if st.mediation and st.mediation.outcome else None
            )
            rec.closed_at = st.closed_at
            rec.satisfaction = st.satisfaction.score if st.satisfaction else rec.satisfaction
            rec.status_json = st.model_dump(mode="json", exclude={"history"})
            rec.updated_at = datetime.now(timezone.utc)
            db.add(rec)
            existing = set(
                db.exec(
                    select(CaseEvent.seq).where(
                        CaseEvent.workflow_id == req.workflow_id,
                        CaseEvent.run_id == req.run_id,
                        CaseEvent.seq >= req.from_seq,
                        CaseEvent.seq < req.from_seq + len(st.history),
                    )
                ).all()
            )
            for seq, entry in enumerate(st.history, start=req.from_seq):
                if seq in existing:
                    continue
                db.add(
                    CaseEvent(
                        workflow_id=req.workflow_id,
                        run_id=req.run_id,
                        seq=seq,
                        contract_id=st.contract_id,
                        at=entry.at,
                        kind=f"dispute.{entry.kind}",
                        detail=entry.detail,
                    )
                )
            db.commit()

    # ------------------------------------------------------------------ alerts
    @activity.defn(name="dispute_alert")
    def alert(self, req: AlertInput) -> None:
        """Record (and thereby notify) an alert; the dedup key makes a retry a no-op."""
        with session(self.engine) as db:
            if db.exec(select(DisputeAlert).where(DisputeAlert.dedup_key == req.dedup_key)).first():
                return
            db.add(
                DisputeAlert(
                    dedup_key=req.dedup_key,
                    dispute_id=req.dispute_id,
                    kind=req.kind,
                    clock=req.clock.value if req.clock else None,
                    threshold=req.threshold,
                    due_at=req.due_at,
                    recipient=req.recipient,
                    message=req.message,
                    at=req.at,
                )
            )
            db.commit()
        log.warning("dispute %s alert %s → %s: %s", req.dispute_id, req.kind, req.recipient, req.message)

    # ------------------------------------------------------------------ letters
    @activity.defn(name="dispute_letter")
    def letter(self, req: DisputeLetterRequest) -> LetterRef:
        """Render and archive a dispute letter (the same letter id is rendered once)."""
        with session(self.engine) as db:
            done = db.get(DisputeLetterRecord, req.letter_id)
            if done and Path(done.file_path).exists():
                return LetterRef(
                    letter_id=done.letter_id,
                    kind=done.kind,
                    sha256=done.sha256,
                    path=done.file_path,
                    at=done.created_at,
                )
        decision = req.decision
        ctx = DisputeLetterContext(
            letter_id=req.letter_id,
            kind=req.kind,
            dispute_id=req.dispute_id,
            member_name=req.member.name,
            member_email=req.member.email,
            member_id=req.member.member_id,
            contract_id=req.contract_id,
            received_on=req.received_on,
            subject=req.subject,
            category=CATEGORY_LABELS_FR[req.category],
            letter_date=req.letter_date,
            answer_due_by=req.answer_due_by,
            outcome=decision.outcome.value if decision else None,
            decision_text=decision.text if decision else None,
            amount=decision.amount if decision else None,
            currency=decision.currency if decision else "EUR",
            handler_name=req.handler_name,
            mediator=req.mediator,
        )
        sender = self.policies.for_portfolio(req.portfolio).sender
        if self._renderer is None:
            self._renderer = self._renderer_factory()
        rendered = self._renderer.render_dispute(ctx, sender)
        digest = hashlib.sha256(rendered.pdf).hexdigest()
        if rendered.sha256 and rendered.sha256 != digest:
            raise RuntimeError(f"renderer hash mismatch for {req.letter_id}")
        folder = self.letters_dir / "disputes" / req.dispute_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{req.letter_id}.pdf"
        tmp = path.with_suffix(".pdf.tmp")
        tmp.write_bytes(rendered.pdf)
        tmp.replace(path)
        now = datetime.now(timezone.utc)
        with session(self.engine) as db:
            rec = db.get(DisputeLetterRecord, req.letter_id) or DisputeLetterRecord(
                letter_id=req.letter_id,
                dispute_id=req.dispute_id,
                kind=req.kind,
                file_path=str(path),
                sha256=digest,
                created_at=now,
            )
            rec.file_path, rec.sha256 = str(path), digest
            db.add(rec)
            db.commit()
        return LetterRef(letter_id=req.letter_id, kind=req.kind, sha256=digest, path=str(path), at=now)

    # ------------------------------------------------------------------ KPIs and feedback
    @activity.defn(name="dispute_satisfaction")
    def satisfaction(self, req: SatisfactionInput) -> None:
        days = (req.closed_at - req.received_at).total_seconds() / 86400 if req.closed_at else None
        with session(self.engine) as db:
            rec = db.get(DisputeSatisfaction, req.dispute_id) or DisputeSatisfaction(
                dispute_id=req.dispute_id, category=req.category.value, score=req.score, at=req.at
            )
            rec.score, rec.comment, rec.handling_days, rec.at = req.score, req.comment, days, req.at
            db.add(rec)
            dispute = db.get(DisputeRecord, req.dispute_id)
            if dispute is not None:
                dispute.satisfaction = req.score
                db.add(dispute)
            db.commit()

    @activity.defn(name="dispute_correction")
    def correction(self, req: CorrectionInput) -> None:
        """An operator's correction: stored as a labelled example for the next training."""
        with session(self.engine) as db:
            already = db.exec(
                select(TriageCorrectionRecord).where(
                    TriageCorrectionRecord.dispute_id == req.dispute_id,
                    TriageCorrectionRecord.at == req.at,
                )
            ).first()
            if already:
                return
            db.add(
                TriageCorrectionRecord(
                    dispute_id=req.dispute_id,
                    text=complaint_text(req.subject, req.description),
                    predicted=req.predicted.value if req.predicted else None,
                    corrected=req.corrected.value,
                    by=req.by,
                    reason=req.reason,
                    model_version=req.model_version,
                    at=req.at,
                )
            )
            db.commit()

    @activity.defn(name="dispute_follow_up")
    def follow_up(self, req: FollowUpInput) -> None:
        with session(self.engine) as db:
            if db.get(DisputeFollowUp, req.follow_up_id):
                return
            db.add(
                DisputeFollowUp(
                    follow_up_id=req.follow_up_id,
                    dispute_id=req.dispute_id,
                    action=req.action,
                    amount=req.amount,
                    currency=req.currency,
                    at=req.at,
                )
            )
            db.commit()


def _default_renderer() -> Any:
    from activities.letters.renderer import LetterRenderer

    return LetterRenderer()
