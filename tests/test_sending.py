"""LetterSender and LetterReconciler against the simulator: real HTTP, SQLite, PDFs."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select

from activities.db import make_engine
from activities.lre_client import LreClient
from activities.sending import LetterReconciler, LetterSender, UnknownLetter
from models.lre import LetterProof, LreMaintenance, LrePermanentError, LreTemporaryError
from models.payloads import Channel, LreEvent, LreEventKind
from models.policy import SenderIdentity
from models.tables import LetterRecord
from simulators.lre_sim import create_app
from tests.test_lre_support import (
    TOKEN,
    HtmlPdfRenderer,
    ServerThread,
    SimAdmin,
    eventually,
    free_port,
    letter_ctx,
    make_settings,
    make_sim_settings,
)
from tests.test_lre_support import (
    letter_ctx as ctx_for,
)

SENDER = SenderIdentity()


class Stack:
    def __init__(self, tmp_path, **sim_overrides):
        sim_port = free_port()
        self.settings = make_settings(tmp_path, sim_port=sim_port, api_port=free_port())
        self.server = ServerThread(
            create_app(
                self.settings, make_sim_settings(self.settings, sim_port=sim_port, **sim_overrides)
            ),
            sim_port,
        ).start()
        self.engine = make_engine(self.settings.resolved_database_url)
        self.lre = LreClient(self.settings.lre_base_url, TOKEN, timeout=2.0)
        self.admin = SimAdmin(self.server.url)
        self.sender = LetterSender(
            self.engine, self.lre, self.settings.letters_dir, HtmlPdfRenderer
        )

    def record(self, letter_id: str) -> LetterRecord | None:
        with Session(self.engine) as s:
            return s.get(LetterRecord, letter_id)

    async def attachment(self, mail_id: str) -> bytes:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.get(f"{self.server.url}/api/mail/{mail_id}/attachment")
            r.raise_for_status()
            return r.content

    async def close(self):
        await self.lre.aclose()
        await self.admin.aclose()
        self.server.stop()


@pytest_asyncio.fixture
async def stack(tmp_path):
    st = Stack(tmp_path)
    try:
        yield st
    finally:
        await st.close()


async def test_lre_send_archives_the_exact_bytes_sent_and_the_deposit_proof(stack):
    ctx = letter_ctx("C-1.r1.formal_notice.1", "C-1", email="jeanne+wait@example.org")
    dep = await stack.sender.send(ctx, SENDER)

    assert dep.status == "deposited" and dep.channel is Channel.LRE
    assert dep.deposited_at is not None and dep.deposited_at.tzinfo is not None
    [mail] = await stack.admin.mails(ctx.letter_id)
    assert mail["id"] == dep.provider_id and mail["type"] == "lre" and mail["ref_dossier"] == "C-1"
    assert mail["to_firstname"] == "Jeanne" and mail["to_lastname"] == "Martin"
    assert datetime.fromisoformat(mail["date"]) == dep.deposited_at

    archived = (stack.settings.letters_dir / "C-1" / f"{ctx.letter_id}.pdf").read_bytes()
    sent = await stack.attachment(dep.provider_id)
    assert archived == sent and archived.startswith(b"%PDF-")
    assert hashlib.sha256(sent).hexdigest() == dep.sha256 == mail["sha256"]

    rec = stack.record(ctx.letter_id)
    assert rec.status == "deposited" and rec.provider_id == dep.provider_id
    assert rec.sha256 == dep.sha256 and rec.proofs["deposit"] == dep.proof_url
    with Session(stack.engine) as s:
        proof = s.get(LetterProof, (ctx.letter_id, "deposit"))
    data = Path(proof.file_path).read_bytes()
    assert data.startswith(b"%PDF-") and hashlib.sha256(data).hexdigest() == proof.sha256


async def test_sending_twice_never_reaches_the_provider_twice(stack):
    ctx = letter_ctx("C-2.r1.formal_notice.1", "C-2", email="j+wait@example.org")
    first = await stack.sender.send(ctx, SENDER)
    renders = HtmlPdfRenderer.calls
    second = await stack.sender.send(ctx, SENDER)
    assert second == first
    assert HtmlPdfRenderer.calls == renders  # not even re-rendered
    assert len(await stack.admin.mails(ctx.letter_id)) == 1


async def test_timeout_after_the_provider_accepted_is_resolved_by_lookup(stack):
    ctx = letter_ctx("C-3.r1.formal_notice.1", "C-3", email="j+wait@example.org")
    await stack.admin.faults(timeout_next=1)
    with pytest.raises(LreTemporaryError):
        await stack.sender.send(ctx, SENDER)
    rec = stack.record(ctx.letter_id)
    assert rec.status == "sending" and "timeout" in rec.error
    [mail] = await stack.admin.mails(ctx.letter_id)  # the provider did take it

    dep = await stack.sender.send(ctx, SENDER)  # what a Temporal retry does
    assert dep.provider_id == mail["id"] and dep.status == "deposited"
    assert len(await stack.admin.mails(ctx.letter_id)) == 1
    assert stack.record(ctx.letter_id).sha256 == mail["sha256"]


@pytest.mark.parametrize("fault", [{"maintenance": True}, {"fail_next": 3}, {"rate_limit_next": 1}])
async def test_provider_down_then_up_sends_exactly_once(stack, fault):
    ctx = letter_ctx(f"C-4.{next(iter(fault))}.1", "C-4", email="j+wait@example.org")
    await stack.admin.faults(**fault)
    for _ in range(3 if "fail_next" in fault else 1):
        with pytest.raises(LreTemporaryError) as info:
            await stack.sender.send(ctx, SENDER)
        assert not info.value.non_retryable
    if "maintenance" in fault:
        assert isinstance(info.value, LreMaintenance)
        await stack.admin.faults(maintenance=False)
    assert stack.record(ctx.letter_id).status == "sending"
    first_pdf = (stack.settings.letters_dir / "C-4" / f"{ctx.letter_id}.pdf").read_bytes()
    dep = await stack.sender.send(ctx, SENDER)
    assert dep.status == "deposited"
    [mail] = await stack.admin.mails(ctx.letter_id)
    # the letter sent after the outage is the one archived before it, byte for byte
    assert mail["sha256"] == hashlib.sha256(first_pdf).hexdigest() == dep.sha256


async def test_invalid_recipient_fails_permanently_and_is_recorded(stack):
    ctx = letter_ctx("C-5.r1.formal_notice.1", "C-5", email="jeanne@domain.invalid")
    with pytest.raises(LrePermanentError) as info:
        await stack.sender.send(ctx, SENDER)
    assert info.value.code == "invalid_recipient" and info.value.non_retryable
    rec = stack.record(ctx.letter_id)
    assert rec.status == "failed" and "invalid_recipient" in rec.error
    assert await stack.admin.mails(ctx.letter_id) == []


async def test_ere_simple_goes_through_the_same_provider_without_eidas(stack):
    ctx = letter_ctx("C-6.r1.reminder.1", "C-6", channel=Channel.ERE, email="j+wait@example.org")
    dep = await stack.sender.send(ctx, SENDER)
    [mail] = await stack.admin.mails(ctx.letter_id)
    assert dep.channel is Channel.ERE and mail["eidas"] == 0 and mail["type"] == "ere"


async def test_paper_letter_goes_to_the_mailroom_batch_then_records_the_deposit(stack):
    ctx = letter_ctx("C-7.r1.formal_notice.1", "C-7", email=None, channel=Channel.PAPER)
    dep = await stack.sender.send(ctx, SENDER)
    assert dep.status == "awaiting_deposit" and dep.deposited_at is None and dep.provider_id is None
    assert dep.channel is Channel.PAPER
    assert await stack.admin.mails(ctx.letter_id) == []
    [batch_pdf] = list((stack.settings.letters_dir / "paper-batch").glob(f"*/{ctx.letter_id}.pdf"))
    envelope = json.loads(batch_pdf.with_suffix(".json").read_text())
    archived = (stack.settings.letters_dir / "C-7" / f"{ctx.letter_id}.pdf").read_bytes()
    assert batch_pdf.read_bytes() == archived
    assert envelope["sha256"] == dep.sha256 == hashlib.sha256(archived).hexdigest()
    assert (
        envelope["recipient"][:2] == ["Jeanne Martin", "3 rue des Lilas"] and envelope["registered"]
    )
    assert (await stack.sender.send(ctx, SENDER)) == dep  # idempotent

    at = datetime(2026, 11, 13, 10, 0, tzinfo=UTC)
    event = stack.sender.record_paper_deposit(ctx.letter_id, "1A 234 567 8901 2", at)
    assert event == LreEvent(
        letter_id=ctx.letter_id,
        event=LreEventKind.DEPOSITED,
        occurred_at=at,
        provider_id="1A 234 567 8901 2",
        tracking_number="1A 234 567 8901 2",
    )
    # the mailroom's retry of the same call is harmless; another number is a conflict
    assert stack.sender.record_paper_deposit(ctx.letter_id, "1A 234 567 8901 2", at) == event
    with pytest.raises(ValueError):
        stack.sender.record_paper_deposit(ctx.letter_id, "9Z 999", at)
    with pytest.raises(UnknownLetter):
        stack.sender.record_paper_deposit("nope", "1A", at)
    rec = stack.record(ctx.letter_id)
    assert rec.status == "deposited" and rec.proofs["tracking_number"] == "1A 234 567 8901 2"
    assert (await stack.sender.send(ctx, SENDER)).deposited_at == at


async def test_paper_without_postal_address_is_permanent(stack):
    ctx = letter_ctx("C-8.r1.formal_notice.1", "C-8", channel=Channel.PAPER)
    ctx.recipient.address = None
    with pytest.raises(LrePermanentError) as info:
        await stack.sender.send(ctx, SENDER)
    assert info.value.code == "no_postal_address"


async def test_lost_webhook_is_reconciled_once(stack):
    ctx = ctx_for("C-9.r1.formal_notice.1", "C-9", email="jeanne+refuse@example.org")
    await stack.admin.faults(drop_next=1)
    dep = await stack.sender.send(ctx, SENDER)

    async def dropped():
        return [w for w in await stack.admin.webhooks() if w["state"] == "dropped"]

    await eventually(dropped, what="the refusal webhook to be dropped")
    signalled: list[tuple[str, LreEvent]] = []

    async def signal(contract_id: str, event: LreEvent) -> None:
        signalled.append((contract_id, event))

    reconciler = LetterReconciler(stack.engine, stack.lre, stack.settings.letters_dir)
    # not yet overdue: nothing asked
    assert await reconciler.reconcile(timedelta(hours=1), signal) == []
    events = await reconciler.reconcile(timedelta(0), signal)
    assert [(e.letter_id, e.event, e.provider_id) for e in events] == [
        (ctx.letter_id, LreEventKind.REFUSED, dep.provider_id)
    ]
    assert signalled == [("C-9", events[0])]
    assert events[0].occurred_at > dep.deposited_at and events[0].proof_url.endswith("/refusal")
    rec = stack.record(ctx.letter_id)
    assert rec.status == "refused" and "refusal" in rec.proofs
    with Session(stack.engine) as s:
        proof = s.get(LetterProof, (ctx.letter_id, "refusal"))
    assert hashlib.sha256(Path(proof.file_path).read_bytes()).hexdigest() == proof.sha256
    assert await reconciler.reconcile(timedelta(0), signal) == []  # applied once
    assert len(signalled) == 1


async def test_reconciliation_recovers_a_send_stuck_in_sending(stack):
    ctx = letter_ctx("C-10.r1.formal_notice.1", "C-10", email="j+wait@example.org")
    await stack.admin.faults(timeout_next=1)
    with pytest.raises(LreTemporaryError):
        await stack.sender.send(ctx, SENDER)
    signalled: list[LreEvent] = []

    async def signal(_contract_id: str, event: LreEvent) -> None:
        signalled.append(event)

    reconciler = LetterReconciler(stack.engine, stack.lre, stack.settings.letters_dir)
    events = await reconciler.reconcile(timedelta(0), signal)
    [mail] = await stack.admin.mails(ctx.letter_id)
    assert [(e.event, e.provider_id) for e in events] == [(LreEventKind.DEPOSITED, mail["id"])]
    assert signalled == events
    assert stack.record(ctx.letter_id).status == "deposited"
    with Session(stack.engine) as s:
        assert len(s.exec(select(LetterRecord)).all()) == 1


async def test_a_proof_that_could_not_be_fetched_is_fetched_by_the_next_reconciliation(stack):
    ctx = letter_ctx("C-11.r1.formal_notice.1", "C-11", email="j+wait@example.org")
    dep = await stack.sender.send(ctx, SENDER)
    with Session(stack.engine) as s:
        s.delete(s.get(LetterProof, (ctx.letter_id, "deposit")))
        s.commit()
    await stack.admin.faults(maintenance=True)
    proof = await stack.sender.proofs.archive(ctx.letter_id, "C-11", "deposit", dep.proof_url)
    assert proof.sha256 is None and "maintenance" in proof.error
    await stack.admin.faults(maintenance=False)

    reconciler = LetterReconciler(stack.engine, stack.lre, stack.settings.letters_dir)
    assert await reconciler.retry_missing_proofs() == 1
    with Session(stack.engine) as s:
        proof = s.get(LetterProof, (ctx.letter_id, "deposit"))
    data = Path(proof.file_path).read_bytes()
    assert proof.error is None and hashlib.sha256(data).hexdigest() == proof.sha256
    assert dep.provider_id.encode() in data
    assert await reconciler.retry_missing_proofs() == 0


async def test_an_abandoned_event_claim_is_taken_over(stack):
    from activities.sending import STALE_CLAIM, LetterEventApplier
    from models.lre import LreWebhookEvent, ProviderMail

    applier = LetterEventApplier(stack.engine, stack.lre, stack.settings.letters_dir)
    mail = ProviderMail(id="77", ref_client="L-77", status="AR", deposited_at=datetime.now(UTC))
    key = applier.claim(mail, source="webhook", provider_event_id="evt_77_AR")
    assert key == "77:AR"
    assert applier.claim(mail, source="webhook", provider_event_id="evt_77_AR") is None
    with Session(stack.engine) as s:  # the claimant died between signal and commit
        row = s.get(LreWebhookEvent, key)
        row.received_at = datetime.now(UTC) - STALE_CLAIM - timedelta(seconds=1)
        s.add(row)
        s.commit()
    assert applier.claim(mail, source="reconciliation", provider_event_id=None) == key
    applier.release(key)
    assert applier.claim(mail, source="webhook", provider_event_id=None) == key
