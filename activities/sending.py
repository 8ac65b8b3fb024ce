"""Sending registered letters without ever sending one twice, and applying their outcomes.

``LetterSender.send`` is the idempotent send (DESIGN.md, "Activities that send anything"):
1. a ``LetterRecord`` is written (``rendering``) before anything else, then the exact PDF
   bytes are archived under ``letters_dir/{contract_id}/{letter_id}.pdf`` and the record
   moves to ``sending`` with their sha256: the bytes sent are the bytes archived;
2. only then is the provider called, with ``ref_client = letter_id``;
3. the deposit proof (provider id, qualified timestamp, proof URL) is written after.
Whenever a record already exists (a retry: the previous attempt may have reached the
provider and died before step 3) the provider is asked for ``ref_client = letter_id``
*first*, and a letter it holds is never sent again.

``LetterEventApplier`` turns a provider status (from a webhook or from reconciliation)
into the letter's new status, its archived proof and an ``lre_event`` signal, at most
once per (mail, status). ``LetterReconciler`` finds letters whose outcome should be known
by now and asks the provider, so a lost webhook never leaves a case waiting forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity

from activities.lre_client import LreClient
from models.letters import LetterContext, RenderedLetter
from models.lre import (
    FINAL_STATUSES,
    LETTER_STATUS_OF_EVENT,
    LetterProof,
    LrePermanentError,
    LreWebhookEvent,
    ProviderMail,
    ProviderSendRequest,
    split_name,
)
from models.payloads import Channel, DepositRecorded, LreEvent, LreEventKind
from models.policy import SenderIdentity
from models.tables import LetterRecord

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger(__name__)

# Letter statuses after which a send is done and must not touch the provider again.
SETTLED = frozenset(
    {"deposited", "accepted", "refused", "negligence", "bounced", "awaiting_deposit"}
)
# A claim on an event older than this whose holder never finished is taken over.
STALE_CLAIM = timedelta(minutes=2)


class LetterRenderer(Protocol):
    def render(self, ctx: LetterContext, sender: SenderIdentity) -> RenderedLetter: ...


class UnknownLetter(LookupError):
    """The provider reports a mail we have no letter for."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; we only ever store UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ProofArchiver:
    """Downloads a proof file and keeps it with its sha256 (``letter_proofs`` table)."""

    def __init__(self, engine: Engine, lre: LreClient, letters_dir: Path) -> None:
        self.engine = engine
        self.lre = lre
        self.letters_dir = Path(letters_dir)

    async def archive(self, letter_id: str, contract_id: str, kind: str, url: str) -> LetterProof:
        with Session(self.engine, expire_on_commit=False) as s:
            proof = s.get(LetterProof, (letter_id, kind))
            if (
                proof is not None
                and proof.sha256
                and proof.file_path
                and Path(proof.file_path).exists()
            ):
                return proof
        path = self.letters_dir / contract_id / "proofs" / f"{letter_id}-{kind}.pdf"
        error: str | None = None
        digest: str | None = None
        try:
            data = await self.lre.download(url)
            _write_atomically(path, data)
            digest = hashlib.sha256(data).hexdigest()
        except Exception as exc:  # a proof can be fetched again later: never lose the event
            error = f"{type(exc).__name__}: {exc}"
            log.warning("could not archive %s proof of %s: %s", kind, letter_id, error)
        with Session(self.engine, expire_on_commit=False) as s:
            proof = s.get(LetterProof, (letter_id, kind)) or LetterProof(
                letter_id=letter_id, kind=kind, url=url
            )
            proof.url = url
            proof.error = error
            if digest:
                proof.file_path, proof.sha256, proof.fetched_at = str(path), digest, utcnow()
            s.add(proof)
            s.commit()
            return proof


class LetterSender:
    def __init__(
        self,
        engine: Engine,
        lre: LreClient,
        letters_dir: Path,
        renderer_factory: Callable[[], LetterRenderer],
        *,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.lre = lre
        self.letters_dir = Path(letters_dir)
        self._renderer_factory = renderer_factory
        self._renderer: LetterRenderer | None = None
        # Test hook: called with "before_provider", "after_provider", "after_write" so a
        # fault-injection test can kill the process exactly there.
        self._on_step = on_step or (lambda _step: None)
        self.proofs = ProofArchiver(engine, lre, self.letters_dir)

    # ------------------------------------------------------------------ send

    async def send(self, ctx: LetterContext, sender: SenderIdentity) -> DepositRecorded:
        rec = self._load(ctx.letter_id)
        if rec is not None and rec.status in SETTLED:
            return self._deposit_of(rec)
        if ctx.channel is Channel.PAPER:
            return await self._send_paper(ctx, sender, rec)
        if ctx.channel not in (Channel.LRE, Channel.ERE):
            raise LrePermanentError(
                "unsupported_channel", f"channel {ctx.channel.value} is not a registered channel"
            )
        if not ctx.recipient.email:
            raise LrePermanentError("no_email", f"letter {ctx.letter_id}: recipient has no e-mail")
        if rec is not None:
            # A previous attempt may have reached the provider: ask before anything else.
            mail = await self.lre.find_by_reference(ctx.letter_id)
            if mail is not None:
                log.info(
                    "letter %s already deposited as %s: not sending again", ctx.letter_id, mail.id
                )
                return await self._record_deposit(ctx.letter_id, mail)

        pdf, _sha = await self._archived_or_rendered(ctx, sender, rec)
        first, last = split_name(ctx.recipient.name)
        professional = ctx.recipient.is_professional
        req = ProviderSendRequest(
            letter_id=ctx.letter_id,
            contract_id=ctx.contract_id,
            to_email=ctx.recipient.email,
            to_firstname="" if professional else first,
            to_lastname="" if professional else last,
            to_company=ctx.recipient.name if professional else "",
            dest_statut="professionnel" if professional else "particulier",
            eidas=ctx.channel is Channel.LRE,
            content=(
                f"{sender.name} vous adresse un courrier recommandé électronique "
                f"concernant votre contrat {ctx.contract_id}."
            ),
            pdf=pdf,
            filename=f"{ctx.kind.value}-{ctx.contract_id}.pdf",
        )
        self._on_step("before_provider")
        try:
            mail = await self.lre.send(req)
        except LrePermanentError as exc:
            self._update(ctx.letter_id, status="failed", error=str(exc))
            raise
        except Exception as exc:
            # Outcome unknown (timeout, 5xx) or certainly not done (maintenance, 429):
            # the record stays ``sending`` so the retry looks the letter up first.
            self._update(ctx.letter_id, error=f"{type(exc).__name__}: {exc}")
            raise
        self._on_step("after_provider")
        deposit = await self._record_deposit(ctx.letter_id, mail)
        self._on_step("after_write")
        return deposit

    async def _archived_or_rendered(
        self, ctx: LetterContext, sender: SenderIdentity, rec: LetterRecord | None
    ) -> tuple[bytes, str]:
        """The archived bytes if a previous attempt wrote them, else a fresh render.

        Re-rendering could produce other bytes (timestamps in PDF metadata): a letter that
        was recorded with a hash is always sent with exactly those bytes."""
        path = self.letters_dir / ctx.contract_id / f"{ctx.letter_id}.pdf"
        if rec is not None and rec.sha256 and path.exists():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == rec.sha256:
                return data, rec.sha256
        if rec is None:
            self._insert(
                LetterRecord(
                    letter_id=ctx.letter_id,
                    contract_id=ctx.contract_id,
                    kind=ctx.kind.value,
                    channel=ctx.channel.value,
                    attempt=ctx.attempt,
                    status="rendering",
                )
            )
        rendered = await self._render(ctx, sender)
        sha = hashlib.sha256(rendered.pdf).hexdigest()
        if rendered.sha256 and rendered.sha256 != sha:
            raise ValueError(f"renderer returned sha256 {rendered.sha256} for bytes hashing {sha}")
        _write_atomically(path, rendered.pdf)
        self._update(
            ctx.letter_id,
            status="sending",
            file_path=str(path),
            sha256=sha,
            channel=ctx.channel.value,
        )
        return rendered.pdf, sha

    async def _render(self, ctx: LetterContext, sender: SenderIdentity) -> RenderedLetter:
        if self._renderer is None:
            self._renderer = self._renderer_factory()
        result: Any = await asyncio.to_thread(self._renderer.render, ctx, sender)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _record_deposit(self, letter_id: str, mail: ProviderMail) -> DepositRecorded:
        with Session(self.engine, expire_on_commit=False) as s:
            rec = s.get(LetterRecord, letter_id)
            assert rec is not None, f"letter {letter_id} vanished"
            if rec.sha256 and mail.content_sha256 and rec.sha256 != mail.content_sha256:
                # Only possible if the archived file was lost between attempts: the
                # provider's certified hash is the truth; say so loudly.
                rec.error = (
                    f"provider certified sha256 {mail.content_sha256}, archive has {rec.sha256}"
                )
                log.error("letter %s: %s", letter_id, rec.error)
            rec.provider_id = mail.id
            rec.deposited_at = mail.deposited_at
            if rec.status in ("rendering", "sending", "failed"):
                rec.status = "deposited"
            rec.proofs = dict(rec.proofs or {}) | mail.proofs
            rec.updated_at = utcnow()
            s.add(rec)
            s.commit()
            contract_id = rec.contract_id
        if url := mail.proofs.get("deposit"):
            await self.proofs.archive(letter_id, contract_id, "deposit", url)
        return self._deposit_of(self._load(letter_id))

    # ------------------------------------------------------------------ paper

    async def _send_paper(
        self, ctx: LetterContext, sender: SenderIdentity, rec: LetterRecord | None
    ) -> DepositRecorded:
        """Lettre recommandée papier: a print-ready PDF in the mailroom's batch folder. The
        legal clock starts when the mailroom records the deposit (``record_paper_deposit``)."""
        address = ctx.recipient.address
        if address is None:
            raise LrePermanentError(
                "no_postal_address", f"letter {ctx.letter_id}: recipient has no postal address"
            )
        pdf, sha = await self._archived_or_rendered(ctx, sender, rec)
        batch = self.letters_dir / "paper-batch" / utcnow().date().isoformat()
        _write_atomically(batch / f"{ctx.letter_id}.pdf", pdf)
        envelope = {
            "letter_id": ctx.letter_id,
            "contract_id": ctx.contract_id,
            "kind": ctx.kind.value,
            "registered": True,  # recommandé avec accusé de réception
            "recipient": [
                ctx.recipient.name,
                address.line1,
                address.line2,
                f"{address.postal_code} {address.city}",
                address.country,
            ],
            "sender": [sender.name, *sender.address_lines],
            "sha256": sha,
        }
        _write_atomically(
            batch / f"{ctx.letter_id}.json",
            json.dumps(envelope, ensure_ascii=False, indent=2).encode(),
        )
        self._update(ctx.letter_id, status="awaiting_deposit", channel=Channel.PAPER.value)
        return self._deposit_of(self._load(ctx.letter_id))

    def record_paper_deposit(
        self, letter_id: str, tracking_number: str, deposited_at: datetime
    ) -> LreEvent:
        """The mailroom deposited the letter at the post office (n° de recommandé)."""
        if deposited_at.tzinfo is None:
            raise ValueError("deposited_at must carry its UTC offset")
        with Session(self.engine, expire_on_commit=False) as s:
            rec = s.get(LetterRecord, letter_id)
            if rec is None:
                raise UnknownLetter(f"no letter {letter_id}")
            if rec.channel != Channel.PAPER.value:
                raise ValueError(f"letter {letter_id} is a {rec.channel} letter, not paper")
            if rec.status == "awaiting_deposit":
                rec.status = "deposited"
                rec.deposited_at = deposited_at
                rec.provider_id = tracking_number
                rec.proofs = dict(rec.proofs or {}) | {"tracking_number": tracking_number}
                rec.updated_at = utcnow()
                s.add(rec)
                s.commit()
            elif rec.provider_id != tracking_number:
                raise ValueError(f"letter {letter_id} was already deposited as {rec.provider_id}")
            return LreEvent(
                letter_id=letter_id,
                event=LreEventKind.DEPOSITED,
                occurred_at=_aware(rec.deposited_at),
                provider_id=tracking_number,
                tracking_number=tracking_number,
            )

    # ------------------------------------------------------------------ records

    def _load(self, letter_id: str) -> LetterRecord | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(LetterRecord, letter_id)

    def _insert(self, rec: LetterRecord) -> None:
        with Session(self.engine) as s:
            s.add(rec)
            try:
                s.commit()
            except IntegrityError:  # a concurrent attempt inserted it first: fine
                s.rollback()

    def _update(self, letter_id: str, **fields: Any) -> None:
        with Session(self.engine) as s:
            rec = s.get(LetterRecord, letter_id)
            assert rec is not None, f"letter {letter_id} vanished"
            for key, value in fields.items():
                setattr(rec, key, value)
            rec.updated_at = utcnow()
            s.add(rec)
            s.commit()

    @staticmethod
    def _deposit_of(rec: LetterRecord) -> DepositRecorded:
        paper_waiting = rec.status == "awaiting_deposit"
        return DepositRecorded(
            letter_id=rec.letter_id,
            provider_id=rec.provider_id,
            channel=Channel(rec.channel),
            sha256=rec.sha256 or "",
            deposited_at=None if paper_waiting else _aware(rec.deposited_at),
            status="awaiting_deposit" if paper_waiting else "deposited",
            proof_url=(rec.proofs or {}).get("deposit"),
        )


# ---------------------------------------------------------------------- outcomes


@dataclass
class AppliedEvent:
    event_key: str
    contract_id: str
    event: LreEvent
    mail: ProviderMail


class LetterEventApplier:
    """Provider status → letter status + archived proof + event, once per (mail, status).

    Protocol: ``claim`` (insert the event key; a duplicate finds it and stops), ``apply``
    (archive the proof, build the event), the caller signals, then ``commit`` (letter
    status + event done in one transaction), or ``release`` if it could not signal so the
    provider's retry (or the reconciler) tries again. A crash between the signal and the
    commit leaves a claim that goes stale after ``STALE_CLAIM`` and is re-applied: the
    signal is at-least-once, the workflow ignores a status a letter already has."""

    def __init__(self, engine: Engine, lre: LreClient, letters_dir: Path) -> None:
        self.engine = engine
        self.proofs = ProofArchiver(engine, lre, Path(letters_dir))

    def find_letter(self, mail: ProviderMail) -> LetterRecord | None:
        with Session(self.engine, expire_on_commit=False) as s:
            electronic = [Channel.LRE.value, Channel.ERE.value]
            rec = s.exec(
                select(LetterRecord).where(
                    LetterRecord.provider_id == mail.id, LetterRecord.channel.in_(electronic)
                )
            ).first()
            if rec is None and mail.ref_client:
                rec = s.get(LetterRecord, mail.ref_client)
                if rec is not None and rec.channel not in electronic:
                    return None
            return rec

    def claim(
        self, mail: ProviderMail, *, source: str, provider_event_id: str | None
    ) -> str | None:
        """The event key if this caller now owns the event, ``None`` if already handled."""
        key = f"{mail.id}:{mail.status.value}"
        with Session(self.engine) as s:
            existing = s.get(LreWebhookEvent, key)
            if existing is not None:
                stale = _aware(existing.received_at) < utcnow() - STALE_CLAIM
                if existing.state == "done" or not stale:
                    return None
                existing.received_at, existing.source = utcnow(), source
                s.add(existing)
                s.commit()
                return key
            s.add(
                LreWebhookEvent(
                    event_key=key,
                    provider_id=mail.id,
                    status=mail.status.value,
                    provider_event_id=provider_event_id,
                    source=source,
                    letter_id=mail.ref_client,
                )
            )
            try:
                s.commit()
            except IntegrityError:  # a concurrent duplicate delivery won the race
                return None
        return key

    def release(self, key: str) -> None:
        with Session(self.engine) as s:
            row = s.get(LreWebhookEvent, key)
            if row is not None and row.state != "done":
                s.delete(row)
                s.commit()

    async def apply(self, key: str, mail: ProviderMail, rec: LetterRecord) -> AppliedEvent:
        """Archive the outcome's proof and build the event. The letter's record changes only
        in ``commit``, after the caller signalled: a failed signal leaves the letter
        ``deposited`` so the provider's retry or the reconciler comes back to it."""
        kind = mail.event
        assert kind is not None and mail.status in FINAL_STATUSES
        proof_url = mail.current_proof_url
        if proof_url:
            await self.proofs.archive(
                rec.letter_id, rec.contract_id, mail.current_proof_kind, proof_url
            )
        event = LreEvent(
            letter_id=rec.letter_id,
            event=kind,
            occurred_at=mail.status_at or utcnow(),
            proof_url=proof_url,
            provider_id=mail.id,
        )
        return AppliedEvent(event_key=key, contract_id=rec.contract_id, event=event, mail=mail)

    def commit(self, applied: AppliedEvent) -> None:
        """The event was signalled: update the letter and mark the event done, atomically."""
        mail, kind = applied.mail, applied.event.event
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.get(LetterRecord, applied.event.letter_id)
            assert row is not None
            row.status = LETTER_STATUS_OF_EVENT[kind]
            row.provider_id = row.provider_id or mail.id
            row.deposited_at = row.deposited_at or mail.deposited_at
            row.proofs = dict(row.proofs or {}) | mail.proofs
            row.updated_at = utcnow()
            s.add(row)
            ev = s.get(LreWebhookEvent, applied.event_key)
            if ev is not None:
                ev.letter_id = row.letter_id
                ev.state, ev.processed_at = "done", utcnow()
                s.add(ev)
            s.commit()


async def signal_lre_event(client: Client, contract_id: str, event: LreEvent) -> bool:
    """Signal ``lre_event`` to ``unpaid-{contract_id}``. ``False`` if that workflow does not
    exist any more (the case closed: the letter's record is still updated). Any other
    failure (Temporal unreachable) propagates so the event is retried."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(f"unpaid-{contract_id}").signal("lre_event", event)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.warning(
                "lre_event for %s: workflow unpaid-%s not found", event.letter_id, contract_id
            )
            return False
        raise
    return True


Signal = Callable[[str, LreEvent], Awaitable[Any]]


class LetterReconciler:
    """Polls the provider for letters still waiting past their expected time (lost webhook)
    and for letters stuck in ``sending`` (a crashed send nobody retried).

    A letter is asked about when it was deposited more than ``older_than`` ago and was
    last asked (or changed) more than ``older_than`` ago. Run it every ``older_than`` (e.g.
    hourly): an outcome whose webhook was lost reaches the case within about two periods;
    the negligence proof comes at the latest the day after the 15-day window."""

    def __init__(self, engine: Engine, lre: LreClient, letters_dir: Path) -> None:
        self.engine = engine
        self.lre = lre
        self.applier = LetterEventApplier(engine, lre, letters_dir)
        self.sender_records = LetterSender(engine, lre, letters_dir, renderer_factory=_no_renderer)

    async def reconcile(
        self, older_than: timedelta, signal: Signal, *, now: datetime | None = None
    ) -> list[LreEvent]:
        now = now or utcnow()
        cutoff = now - older_than
        with Session(self.engine, expire_on_commit=False) as s:
            electronic = [Channel.LRE.value, Channel.ERE.value]
            waiting = list(
                s.exec(
                    select(LetterRecord).where(
                        LetterRecord.status == "deposited",
                        LetterRecord.channel.in_(electronic),
                        LetterRecord.provider_id.is_not(None),
                        LetterRecord.deposited_at < cutoff,
                        # polled at most once per ``older_than``: 10,000 letters inside
                        # their 15-day window must not cost 10,000 calls every run
                        LetterRecord.updated_at < cutoff,
                    )
                ).all()
            )
            stuck = s.exec(
                select(LetterRecord).where(
                    LetterRecord.status == "sending",
                    LetterRecord.channel.in_(electronic),
                    LetterRecord.updated_at < cutoff,
                )
            ).all()
        events: list[LreEvent] = []
        for rec in stuck:
            mail = await self.lre.find_by_reference(rec.letter_id)
            if mail is None:
                continue  # never reached the provider: the workflow's own retry re-sends
            dep = await self.sender_records._record_deposit(rec.letter_id, mail)
            event = LreEvent(
                letter_id=rec.letter_id,
                event=LreEventKind.DEPOSITED,
                occurred_at=dep.deposited_at,
                proof_url=dep.proof_url,
                provider_id=mail.id,
            )
            await signal(rec.contract_id, event)
            events.append(event)
            if mail.status in FINAL_STATUSES:
                waiting.append(self.sender_records._load(rec.letter_id))
        for rec in waiting:
            try:
                mail = await self.lre.get(rec.provider_id)
            except LrePermanentError as exc:  # one bad letter must not block the others
                log.error("reconciliation of %s (%s): %s", rec.letter_id, rec.provider_id, exc)
                continue
            if mail.status not in FINAL_STATUSES:
                self.sender_records._update(rec.letter_id)  # remember we asked
                continue
            key = self.applier.claim(mail, source="reconciliation", provider_event_id=None)
            if key is None:
                continue
            try:
                applied = await self.applier.apply(key, mail, rec)
                await signal(applied.contract_id, applied.event)
            except BaseException:
                self.applier.release(key)
                raise
            self.applier.commit(applied)
            events.append(applied.event)
        await self.retry_missing_proofs()
        return events

    async def retry_missing_proofs(self) -> int:
        """Fetch again the proofs whose download failed earlier; returns how many are now
        archived."""
        with Session(self.engine, expire_on_commit=False) as s:
            missing = [
                (proof, rec.contract_id)
                for proof in s.exec(select(LetterProof).where(LetterProof.sha256.is_(None)))
                if (rec := s.get(LetterRecord, proof.letter_id)) is not None
            ]
        fixed = 0
        for proof, contract_id in missing:
            done = await self.applier.proofs.archive(
                proof.letter_id, contract_id, proof.kind, proof.url
            )
            fixed += done.sha256 is not None
        return fixed


def _no_renderer() -> LetterRenderer:
    raise RuntimeError("the reconciler never renders")


# ---------------------------------------------------------------------- activities


class LreActivities:
    """Activities around registered letters, built once per worker from the settings.

    ``send_letter`` is registered by ``RecoveryActivities`` (it calls ``LetterSender.send``);
    register ``reconcile_letters`` from here (activities/registry.py). It is idempotent:
    Temporal may retry it freely."""

    def __init__(self, reconciler: LetterReconciler) -> None:
        self.reconciler = reconciler

    @classmethod
    def from_settings(cls, settings: Any, engine: Engine | None = None) -> LreActivities:
        from activities.db import make_engine

        engine = engine or make_engine(settings.resolved_database_url)
        lre = LreClient.from_settings(settings)
        return cls(LetterReconciler(engine, lre, settings.letters_dir))

    def all(self) -> list[Any]:
        return [self.reconcile_letters]

    @activity.defn(name="reconcile_letters")
    async def reconcile_letters(self, older_than_seconds: float) -> list[LreEvent]:
        """Ask the provider about letters waiting longer than ``older_than_seconds`` and
        signal each new outcome to its case. Returns the events signalled."""
        client = activity.client()

        async def signal(contract_id: str, event: LreEvent) -> None:
            await signal_lre_event(client, contract_id, event)

        return await self.reconciler.reconcile(timedelta(seconds=older_than_seconds), signal)
