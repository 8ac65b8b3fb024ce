"""Activities of the recovery workflow: every I/O of a case (database, letters, provider).

Activities are methods of a class that receives its dependencies (STYLE.md,
money-transfer template), so tests pass real local services.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from activities.db import make_engine, session
from models.letters import LetterContext
from models.payloads import DepositRecorded
from models.policy import PolicyBook, RecoveryPolicy, load_policies
from models.recovery import CaseSync, LitigationRequest, PaymentEntry
from models.settings import Settings
from models.tables import CaseEvent, CaseRecord, LitigationHandoff, PaymentRecord

log = logging.getLogger("precontentieux.activities")


async def _heartbeat(detail: str, every: float = 3.0) -> None:
    while True:
        activity.heartbeat(detail)
        await asyncio.sleep(every)


class RecoveryActivities:
    def __init__(
        self,
        engine: Engine,
        policies: PolicyBook,
        letters_dir: Path,
        sender_factory: Callable[[], Any] | None = None,
        renderer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.letters_dir = letters_dir
        self._sender_factory = sender_factory
        self._renderer_factory = renderer_factory
        self._sender: Any = None
        self._renderer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RecoveryActivities:
        engine = make_engine(settings.resolved_database_url)

        def renderer_factory():
            from activities.letters.renderer import LetterRenderer

            return LetterRenderer()

        def sender_factory():
            from activities.lre_client import LreClient
            from activities.sending import LetterSender

            lre = LreClient(
                settings.lre_base_url,
                settings.lre_token.get_secret_value(),
                timeout=settings.lre_timeout_seconds,
            )
            return LetterSender(engine, lre, settings.letters_dir, renderer_factory)

        return cls(engine, load_policies(settings.policies_file), settings.letters_dir, sender_factory, renderer_factory)

    def all(self) -> list[Callable[..., Any]]:
        return [self.load_policy, self.sync_case, self.record_payment, self.send_letter, self.hand_over_to_litigation]

    # ------------------------------------------------------------------ activities
    @activity.defn(name="load_policy")
    def load_policy(self, portfolio: str) -> RecoveryPolicy:
        return self.policies.for_portfolio(portfolio)

    @activity.defn(name="sync_case")
    def sync_case(self, sync: CaseSync) -> None:
        st = sync.status
        with session(self.engine) as db:
            row = db.get(CaseRecord, st.contract_id)
            if row is None:
                row = CaseRecord(contract_id=st.contract_id, workflow_id=sync.workflow_id, portfolio=st.portfolio,
                                 regime=st.regime.value, stage=st.stage.value, unpaid_kind=st.unpaid_kind.value)
            elif row.run_id != sync.run_id and sync.first_seq == 0 and row.closed:
                row.opened_at = datetime.now(timezone.utc)  # a new case for the same contract
            row.run_id = sync.run_id
            row.workflow_id = sync.workflow_id
            row.portfolio, row.regime = st.portfolio, st.regime.value
            row.stage, row.unpaid_kind, row.currency = st.stage.value, st.unpaid_kind.value, st.currency
            row.amount_due, row.amount_paid, row.balance = st.amount_due, st.amount_paid, st.balance
            row.notice_sent_at, row.suspension_at = st.notice_sent_at, st.suspension_at
            row.termination_at, row.reinstatement_at = st.termination_at, st.reinstatement_at
            row.next_deadline_kind = st.next_deadline.kind if st.next_deadline else None
            row.next_deadline_at = st.next_deadline.at if st.next_deadline else None
            row.closed = st.closed
            row.updated_at = datetime.now(timezone.utc)
            db.add(row)
            existing = set(
                db.exec(
                    select(CaseEvent.seq).where(
                        CaseEvent.workflow_id == sync.workflow_id, CaseEvent.run_id == sync.run_id,
                        CaseEvent.seq >= sync.first_seq,
                    )
                ).all()
            )
            for offset, ev in enumerate(sync.events):
                seq = sync.first_seq + offset
                if seq in existing:
                    continue  # a retried activity: already written
                db.add(CaseEvent(workflow_id=sync.workflow_id, run_id=sync.run_id, seq=seq,
                                 contract_id=st.contract_id, at=ev.at, kind=ev.kind, detail=ev.detail))
            db.commit()

    @activity.defn(name="record_payment")
    def record_payment(self, entry: PaymentEntry) -> None:
        p = entry.payment
        with session(self.engine) as db:
            if db.get(PaymentRecord, p.payment_id) is not None:
                return
            db.add(PaymentRecord(payment_id=p.payment_id, contract_id=entry.contract_id, amount=p.amount,
                                 currency=(p.currency or entry.currency).upper(), received_at=p.received_at,
                                 method=p.method, reference=p.reference))
            try:
                db.commit()
            except IntegrityError:  # concurrent duplicate: the ledger keeps one line
                db.rollback()

    @activity.defn(name="send_letter")
    async def send_letter(self, ctx: LetterContext) -> DepositRecorded:
        if self._sender is None:
            assert self._sender_factory is not None, "no letter sender configured"
            self._sender = self._sender_factory()
        policy = self.policies.for_portfolio(ctx.portfolio)
        activity.logger.info("sending %s %s by %s", ctx.kind.value, ctx.letter_id, ctx.channel.value)
        # Heartbeats let the server notice a dead worker within the heartbeat timeout instead
        # of the whole start-to-close timeout; the retry then looks the letter up first.
        beating = asyncio.create_task(_heartbeat(ctx.letter_id))
        try:
            return await self._sender.send(ctx, policy.sender)
        finally:
            beating.cancel()

    @activity.defn(name="hand_over_to_litigation")
    def hand_over_to_litigation(self, req: LitigationRequest) -> str:
        """Transmission au contentieux: the summary PDF and the evidence pack references."""
        contract_id = req.case.contract_id
        with session(self.engine) as db:
            existing = db.get(LitigationHandoff, contract_id)
            if existing is not None and existing.workflow_id == req.workflow_id and existing.summary_path:
                return f"LIT-{contract_id}"
        if self._renderer is None:
            assert self._renderer_factory is not None, "no letter renderer configured"
            self._renderer = self._renderer_factory()
        policy = self.policies.for_portfolio(req.case.portfolio)
        rendered = self._renderer.render(req.summary, policy.sender)
        path = self.letters_dir / contract_id / f"{req.summary.letter_id}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.pdf)
        assert hashlib.sha256(rendered.pdf).hexdigest() == rendered.sha256
        evidence = {
            "letters": [lt.model_dump(mode="json") for lt in req.status.letters],
            "summary_sha256": rendered.sha256,
            "history": [h.model_dump(mode="json") for h in req.status.history],
        }
        with session(self.engine) as db:
            row = db.get(LitigationHandoff, contract_id) or LitigationHandoff(
                contract_id=contract_id, workflow_id=req.workflow_id, balance=req.status.balance
            )
            row.workflow_id, row.balance, row.currency = req.workflow_id, req.status.balance, req.status.currency
            row.summary_path, row.evidence = str(path), evidence
            db.add(row)
            db.commit()
        return f"LIT-{contract_id}"
