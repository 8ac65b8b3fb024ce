"""The real recovery workflow with the real sending path: worker activities → LetterSender →
simulator (HTTP) → signed webhook → our API → ``lre_event`` signal → the case.

Only the PDF renderer is the small WeasyPrint renderer of the LRE tests (the letters
themselves are tested elsewhere). The Temporal server is the time-skipping one; the
simulator and the webhooks run in real time beside it.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.db import make_engine
from activities.lre_client import LreClient
from activities.recovery import RecoveryActivities
from activities.sending import LetterReconciler, LetterSender, LreActivities
from models import calendar as cal
from models.lre import LetterProof
from models.payloads import CaseStatus, LreEventKind
from models.policy import load_policies
from models.tables import LetterRecord
from simulators.lre_sim import create_app as create_sim
from tests.recovery_support import make_case, paris_today, start_case
from tests.test_lre_support import (
    TOKEN,
    HtmlPdfRenderer,
    ServerThread,
    SimAdmin,
    eventually,
    free_port,
    make_settings,
    make_sim_settings,
    real_api_app,
)
from worker import build_worker


@asynccontextmanager
async def stack(env, tmp_path: Path):
    sim_port, api_port = free_port(), free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=api_port)
    sim = ServerThread(
        create_sim(settings, make_sim_settings(settings, sim_port=sim_port)), sim_port
    )
    sim.start()
    api = ServerThread(
        real_api_app(settings, env.client.service_client.config.target_host, env.client.namespace),
        api_port,
    ).start()
    engine = make_engine(settings.resolved_database_url)
    lre = LreClient(settings.lre_base_url, TOKEN, timeout=5.0)
    acts = RecoveryActivities(
        engine,
        load_policies(None),
        settings.letters_dir,
        sender_factory=lambda: LetterSender(engine, lre, settings.letters_dir, HtmlPdfRenderer),
        renderer_factory=HtmlPdfRenderer,
    )
    task_queue = f"lre-e2e-{uuid.uuid4().hex[:8]}"
    admin = SimAdmin(sim.url)
    try:
        async with build_worker(env.client, settings, activities=acts.all(), task_queue=task_queue):
            yield task_queue, engine, admin, f"http://127.0.0.1:{api_port}", (settings, lre)
    finally:
        await admin.aclose()
        await lre.aclose()
        await asyncio.to_thread(api.stop)
        await asyncio.to_thread(sim.stop)


async def status(handle) -> CaseStatus:
    return await handle.query("status", result_type=CaseStatus)


async def until(env, handle, predicate, *, what: str, rounds: int = 200) -> CaseStatus:
    """Let workflow time move (time-skipping, up to 100 h: letters leave at the policy's
    send hour) and real time pass (the simulator's webhooks)."""
    for _ in range(rounds):
        st = await status(handle)
        if predicate(st):
            return st
        await env.sleep(timedelta(minutes=30))
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {st.model_dump_json(indent=1)}")


async def close_case(handle) -> None:
    """End the case. Terminated rather than awaited: how a cancelled case winds down is
    the recovery tests' business (a cancel arriving while an activity is in flight has
    been seen to leave the run open here)."""
    await handle.signal("cancel", {"reason": "test over"})
    await handle.terminate("LRE test over")


def record(engine, letter_id: str) -> LetterRecord:
    with Session(engine) as s:
        return s.get(LetterRecord, letter_id)


def notice(st: CaseStatus, attempt: int = 1):
    return next(
        (l for l in st.letters if l.kind.value == "formal_notice" and l.attempt == attempt), None
    )


async def test_notice_accepted_through_the_real_webhook(ts_env, tmp_path):
    async with stack(ts_env, tmp_path) as (tq, engine, admin, _api, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        case = make_case(due=due, email="alice@example.org")
        handle = await start_case(ts_env.client, case, tq)
        st = await until(
            ts_env,
            handle,
            lambda s: notice(s) is not None and notice(s).status == "accepted",
            what="the notice to be accepted",
        )
        letter = notice(st)
        assert st.stage.value == "notice_sent" and letter.channel.value == "lre"
        [mail] = await admin.mails(letter.letter_id)
        assert letter.provider_id == mail["id"] and letter.sha256 == mail["sha256"]
        assert letter.proofs["accepted"].endswith(f"/api/proof/{mail['id']}/receipt")
        # the legal clock runs from the certified deposit, not from the acceptance
        deposited = st.notice_sent_at
        assert deposited == datetime.fromisoformat(mail["date"])
        assert st.suspension_at == cal.notice_schedule(deposited, cal.DelayRules()).suspension_at
        rec = record(engine, letter.letter_id)
        assert rec.status == "accepted"
        with Session(engine) as s:
            assert s.get(LetterProof, (letter.letter_id, "receipt")).sha256
        assert len(await admin.mails()) == len(
            [l for l in st.letters if l.channel.value != "paper"]
        )
        await close_case(handle)


async def test_bounced_notice_falls_back_to_paper_and_the_clock_restarts(ts_env, tmp_path):
    async with stack(ts_env, tmp_path) as (tq, engine, admin, api, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(
            ts_env.client, make_case(due=due, email="alice+bounce@example.org"), tq
        )
        st = await until(
            ts_env,
            handle,
            lambda s: notice(s, 2) is not None and notice(s, 2).status == "awaiting_deposit",
            what="the paper notice after the bounce",
        )
        first, paper = notice(st, 1), notice(st, 2)
        assert first.channel.value == "lre" and first.status == "bounced"
        assert paper.channel.value == "paper"
        assert st.stage.value == "grace" and st.notice_sent_at is None and st.suspension_at is None
        assert record(engine, first.letter_id).status == "bounced"
        assert record(engine, paper.letter_id).status == "awaiting_deposit"
        [batch] = list((tmp_path / "letters" / "paper-batch").glob(f"*/{paper.letter_id}.pdf"))
        assert batch.read_bytes().startswith(b"%PDF-")

        deposit_at = (await ts_env.get_current_time()).replace(microsecond=0)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(
                f"{api}/v1/letters/{paper.letter_id}/paper-deposit",
                json={
                    "tracking_number": "1A 000 000 0001 2",
                    "deposited_at": deposit_at.isoformat(),
                },
                headers={"Authorization": "Bearer bo-key"},
            )
        assert r.status_code == 200 and r.json()["signalled"] is True, r.text
        st = await until(
            ts_env, handle, lambda s: s.notice_sent_at is not None, what="the paper deposit"
        )
        assert st.stage.value == "notice_sent" and st.notice_sent_at == deposit_at
        assert st.suspension_at == cal.notice_schedule(deposit_at, cal.DelayRules()).suspension_at
        await close_case(handle)


async def test_no_consent_sends_paper_from_the_start(ts_env, tmp_path):
    async with stack(ts_env, tmp_path) as (tq, engine, admin, _api, _):
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due, consent=False), tq)
        # the letter shows in the status as "sending" while it is produced
        st = await until(
            ts_env, handle, lambda s: notice(s) is not None and notice(s).status != "sending",
            what="the notice to be produced",
        )
        letter = notice(st)
        assert letter.channel.value == "paper" and letter.status == "awaiting_deposit"
        assert [m for m in await admin.mails() if m["ref_client"] == letter.letter_id] == []
        assert record(engine, letter.letter_id).channel == "paper"
        await close_case(handle)


async def test_lost_webhooks_are_reconciled_into_the_case(ts_env, tmp_path):
    async with stack(ts_env, tmp_path) as (tq, engine, admin, _api, (settings, lre)):
        await admin.faults(drop_webhook_rate=1.0)  # every callback is lost
        due = await paris_today(ts_env) - timedelta(days=20)
        handle = await start_case(ts_env.client, make_case(due=due, email="alice@example.org"), tq)
        st = await until(
            ts_env,
            handle,
            lambda s: notice(s) is not None and notice(s).status == "deposited",
            what="the notice to be deposited",
        )
        letter = notice(st)

        async def all_dropped():
            hooks = await admin.webhooks()
            mails = await admin.mails()
            done = len(hooks) == len(mails) and all(h["state"] == "dropped" for h in hooks)
            return hooks if hooks and done else None

        await eventually(all_dropped, what="the provider to decide (and lose the callbacks)")
        assert (await status(handle)).letters[-1].status == "deposited"  # nobody told the case

        activities = LreActivities(LetterReconciler(engine, lre, settings.letters_dir))
        events = await ActivityEnvironment(client=ts_env.client).run(
            activities.reconcile_letters, 0.0
        )
        assert letter.letter_id in {e.letter_id for e in events}
        assert {e.event for e in events} == {LreEventKind.ACCEPTED}
        st = await until(
            ts_env, handle, lambda s: notice(s).status == "accepted", what="the reconciled event"
        )
        assert record(engine, letter.letter_id).status == "accepted"
        again = await ActivityEnvironment(client=ts_env.client).run(
            activities.reconcile_letters, 0.0
        )
        assert again == []
        await close_case(handle)
