"""The webhook receiver: real simulator → real HTTP → our API → a Temporal signal.

The API app here mounts the real ``starter.api.lre_webhook`` router with the app.state
conventions of ``starter.api.app`` (settings, temporal, engine, api_keys). The workflow
receiving ``lre_event`` is a small recorder registered under the recovery workflow's
name: what is tested is what reaches Temporal, not the recovery logic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlmodel import Session, select
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.db import make_engine
from activities.lre_client import LreClient
from activities.sending import LetterSender
from models.lre import LetterProof, LreWebhookDelivery, LreWebhookEvent, sign_webhook
from models.payloads import Channel, LreEvent, LreEventKind
from models.policy import SenderIdentity
from models.tables import LetterRecord
from simulators.lre_sim import create_app as create_sim
from tests.test_lre_support import (
    SECRET,
    TOKEN,
    HtmlPdfRenderer,
    ServerThread,
    SimAdmin,
    api_app,
    eventually,
    free_port,
    letter_ctx,
    make_settings,
    make_sim_settings,
    real_api_app,
)

TASK_QUEUE = "lre-webhook-tests"


@workflow.defn(name="UnpaidPremiumWorkflow")
class LreEventRecorder:
    def __init__(self) -> None:
        self.events: list[LreEvent] = []

    @workflow.run
    async def run(self, contract_id: str) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name="lre_event")
    def lre_event(self, event: LreEvent) -> None:
        self.events.append(event)

    @workflow.query(name="lre_events")
    def lre_events(self) -> list[LreEvent]:
        return self.events


class Harness:
    def __init__(self, tmp_path, env, **sim_overrides):
        self.env = env
        self.sim_port, self.api_port = free_port(), free_port()
        self.settings = make_settings(tmp_path, sim_port=self.sim_port, api_port=self.api_port)
        self.sim = ServerThread(
            create_sim(
                self.settings,
                make_sim_settings(self.settings, sim_port=self.sim_port, **sim_overrides),
            ),
            self.sim_port,
        )
        self.api: ServerThread | None = None
        self.engine = make_engine(self.settings.resolved_database_url)
        self.lre = LreClient(self.settings.lre_base_url, TOKEN, timeout=2.0)
        self.admin = SimAdmin(self.sim.url)
        self.sender = LetterSender(
            self.engine, self.lre, self.settings.letters_dir, HtmlPdfRenderer
        )
        self.webhook_url = f"http://127.0.0.1:{self.api_port}/v1/lre/webhook"

    def start_api(self, temporal_target: str | None = None) -> None:
        """The real gateway app; with ``temporal_target`` (an unreachable one), the same
        router on a minimal app whose Temporal client connects lazily, so it can start."""
        if temporal_target is None:
            target = self.env.client.service_client.config.target_host
            app = real_api_app(self.settings, target, self.env.client.namespace)
        else:
            app = api_app(self.settings, temporal_target, self.env.client.namespace)
        self.api = ServerThread(app, self.api_port).start()

    def stop_api(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None

    async def start_case(self, contract_id: str):
        return await self.env.client.start_workflow(
            "UnpaidPremiumWorkflow", contract_id, id=f"unpaid-{contract_id}", task_queue=TASK_QUEUE
        )

    def record(self, letter_id: str) -> LetterRecord:
        with Session(self.engine) as s:
            return s.get(LetterRecord, letter_id)

    async def close(self) -> None:
        self.stop_api()
        self.sim.stop()
        await self.lre.aclose()
        await self.admin.aclose()


@asynccontextmanager
async def harness(tmp_path, env, **sim_overrides):
    h = Harness(tmp_path, env, **sim_overrides)
    h.sim.start()
    try:
        async with Worker(
            env.client,
            task_queue=TASK_QUEUE,
            workflows=[LreEventRecorder],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            yield h
    finally:
        await h.close()


def signed(body: dict, *, secret: str = SECRET, at: int | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    return raw, {
        "Content-Type": "application/json",
        "X-LRE-Signature": sign_webhook(secret, raw, at or int(time.time())),
    }


async def test_accepted_letter_reaches_the_case_once_with_its_archived_receipt(tmp_path, ts_env):
    async with harness(tmp_path, ts_env) as h:
        h.start_api()
        handle = await h.start_case("W-1")
        await h.admin.faults(duplicate_next=1)  # the provider will deliver the webhook twice
        dep = await h.sender.send(letter_ctx("W-1.r1.formal_notice.1", "W-1"), SenderIdentity())

        async def delivered():
            hooks = [w for w in await h.admin.webhooks() if w["state"] == "delivered"]
            return hooks if hooks and hooks[0]["deliveries"] == 2 else None

        hooks = await eventually(delivered, what="the duplicated AR webhook")
        assert len(hooks) == 1  # one status change, delivered twice
        events = await handle.query("lre_events", result_type=list[LreEvent])
        assert [(e.letter_id, e.event, e.provider_id) for e in events] == [
            ("W-1.r1.formal_notice.1", LreEventKind.ACCEPTED, dep.provider_id)
        ]
        assert events[0].occurred_at > dep.deposited_at
        assert events[0].proof_url.endswith(f"/api/proof/{dep.provider_id}/receipt")

        rec = h.record("W-1.r1.formal_notice.1")
        assert rec.status == "accepted" and set(rec.proofs) >= {"deposit", "receipt"}
        receipt = await h.lre.download(rec.proofs["receipt"])
        with Session(h.engine) as s:
            proof = s.get(LetterProof, ("W-1.r1.formal_notice.1", "receipt"))
            [ev] = s.exec(select(LreWebhookEvent)).all()
        assert Path(proof.file_path).read_bytes() == receipt
        assert proof.sha256 == hashlib.sha256(receipt).hexdigest()
        assert (ev.event_key, ev.state, ev.source) == (f"{dep.provider_id}:AR", "done", "webhook")
        await handle.terminate()


async def test_forged_stale_replayed_malformed_and_unknown_deliveries(tmp_path, ts_env):
    async with harness(tmp_path, ts_env, webhook_retry_seconds=3600) as h:
        h.start_api()
        handle = await h.start_case("W-2")
        dep = await h.sender.send(
            letter_ctx("W-2.r1.formal_notice.1", "W-2", email="jeanne+wait@example.org"),
            SenderIdentity(),
        )
        # the recipient refuses, but the provider's webhook is lost: we deliver by hand
        await h.admin.faults(drop_next=1)
        r = await h.admin.http.post(f"mails/{dep.provider_id}/status", json={"status": "refused"})
        mail = r.json()
        body = {
            "event_id": f"evt_{dep.provider_id}_refused",
            "delivery_id": uuid.uuid4().hex,
            "occurred_at": mail["status_date"],
            "mail": mail,
        }
        async with httpx.AsyncClient(timeout=10) as http:
            post = lambda raw, headers: http.post(h.webhook_url, content=raw, headers=headers)

            raw, headers = signed(body)
            r = await post(raw, {"Content-Type": "application/json"})
            assert r.status_code == 401 and "missing X-LRE-Signature" in r.json()["detail"]
            r = await post(raw, signed(body, secret="not-the-secret")[1])
            assert r.status_code == 401 and "does not match" in r.json()["detail"]
            r = await post(raw.replace(b"refused", b"AR"), headers)  # tampered after signing
            assert r.status_code == 401 and "does not match" in r.json()["detail"]
            r = await post(*signed(body, at=int(time.time()) - 600))
            assert r.status_code == 401 and "stale" in r.json()["detail"]
            r = await post(raw, {"X-LRE-Signature": "sha256=deadbeef"})
            assert r.status_code == 401
            assert h.record("W-2.r1.formal_notice.1").status == "deposited"  # nothing applied

            r = await post(raw, headers)
            assert r.status_code == 200, r.text
            assert r.json() == {
                "status": "processed",
                "letter_id": "W-2.r1.formal_notice.1",
                "event": "refused",
                "signalled": True,
            }
            r = await post(raw, headers)  # the very same delivery again: a replay
            assert r.status_code == 409 and "replayed" in r.json()["detail"]
            r = await post(*signed(body | {"delivery_id": uuid.uuid4().hex}))  # provider retry
            assert r.status_code == 200 and r.json()["status"] == "duplicate"

            r = await post(*signed({"delivery_id": uuid.uuid4().hex, "mail": {"id": "1"}}))
            assert r.status_code == 422 and r.json()["detail"] == "malformed webhook body"
            r = await post(*signed({"mail": mail}))
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "delivery_id"
            stranger = mail | {"id": "424242", "ref_client": "someone-else"}
            r = await post(*signed(body | {"delivery_id": uuid.uuid4().hex, "mail": stranger}))
            assert r.status_code == 404 and "unknown letter" in r.json()["detail"]
            waiting = mail | {"status": "waiting"}
            r = await post(*signed(body | {"delivery_id": uuid.uuid4().hex, "mail": waiting}))
            assert r.status_code == 200 and r.json()["status"] == "ignored"

        events = await handle.query("lre_events", result_type=list[LreEvent])
        assert [(e.event, e.provider_id) for e in events] == [
            (LreEventKind.REFUSED, dep.provider_id)
        ]
        assert h.record("W-2.r1.formal_notice.1").status == "refused"
        with Session(h.engine) as s:
            # processed, duplicate, unknown and waiting deliveries; rejected ones are not recorded
            assert len(s.exec(select(LreWebhookDelivery)).all()) == 4
        await handle.terminate()


async def test_temporal_down_answers_503_and_the_provider_retry_applies_it(tmp_path, ts_env):
    async with harness(tmp_path, ts_env, webhook_retry_seconds=0.3) as h:
        h.start_api(temporal_target=f"127.0.0.1:{free_port()}")  # nothing listens there
        handle = await h.start_case("W-3")
        dep = await h.sender.send(
            letter_ctx("W-3.r1.formal_notice.1", "W-3", email="jeanne+bounce@example.org"),
            SenderIdentity(),
        )

        async def failed_once():
            hooks = await h.admin.webhooks()
            return (
                hooks
                if hooks and hooks[0]["attempts"] >= 1 and hooks[0]["state"] == "pending"
                else None
            )

        [hook] = await eventually(failed_once, what="a failed delivery")
        assert "HTTP 503" in hook["last_error"]
        assert h.record("W-3.r1.formal_notice.1").status == "deposited"  # not applied
        await asyncio.to_thread(h.stop_api)
        h.start_api()  # Temporal reachable again; the provider retries on its own

        async def delivered():
            hooks = await h.admin.webhooks()
            return hooks if hooks[0]["state"] == "delivered" else None

        [hook] = await eventually(delivered, what="the retried delivery")
        assert hook["attempts"] >= 2
        events = await handle.query("lre_events", result_type=list[LreEvent])
        assert [(e.event, e.provider_id) for e in events] == [
            (LreEventKind.BOUNCED, dep.provider_id)
        ]
        assert h.record("W-3.r1.formal_notice.1").status == "bounced"
        await handle.terminate()


async def test_paper_deposit_endpoint_signals_the_deposit(tmp_path, ts_env):
    async with harness(tmp_path, ts_env) as h:
        h.start_api()
        handle = await h.start_case("W-4")
        ctx = letter_ctx("W-4.r1.formal_notice.2", "W-4", email=None, channel=Channel.PAPER)
        dep = await h.sender.send(ctx, SenderIdentity())
        assert dep.status == "awaiting_deposit"
        url = f"http://127.0.0.1:{h.api_port}/v1/letters/{ctx.letter_id}/paper-deposit"
        deposit = {
            "tracking_number": "1A 123 456 7890 1",
            "deposited_at": "2026-11-16T11:30:00+01:00",
        }
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(url, json=deposit)
            assert r.status_code == 401
            r = await http.post(url, json=deposit, headers={"Authorization": "Bearer mgr-key"})
            assert r.status_code == 403
            bo = {"Authorization": "Bearer bo-key"}
            r = await http.post(
                url, json=deposit | {"deposited_at": "2026-11-16T11:30:00"}, headers=bo
            )
            assert r.status_code == 422
            r = await http.post(url, json=deposit, headers=bo)
            assert r.status_code == 200 and r.json()["signalled"] is True
            r = await http.post(url.replace("W-4.r1", "W-9.r1"), json=deposit, headers=bo)
            assert r.status_code == 404
        [event] = await handle.query("lre_events", result_type=list[LreEvent])
        assert (
            event.event is LreEventKind.DEPOSITED and event.tracking_number == "1A 123 456 7890 1"
        )
        assert event.occurred_at == datetime(2026, 11, 16, 10, 30, tzinfo=UTC)
        assert h.record(ctx.letter_id).status == "deposited"
        await handle.terminate()


async def test_lre_reconcile_command_signals_an_outcome_whose_webhook_was_lost(tmp_path, ts_env):
    async with harness(tmp_path, ts_env) as h:
        handle = await h.start_case("W-5")
        await h.admin.faults(drop_next=1)
        dep = await h.sender.send(
            letter_ctx("W-5.r1.formal_notice.1", "W-5", email="jeanne+refuse@example.org"),
            SenderIdentity(),
        )

        async def dropped():
            return [w for w in await h.admin.webhooks() if w["state"] == "dropped"]

        await eventually(dropped, what="the lost refusal callback")
        env = os.environ | {
            "DATA_DIR": str(h.settings.data_dir),
            "DATABASE_URL": h.settings.resolved_database_url,
            "LRE_BASE_URL": h.settings.lre_base_url,
            "LRE_TOKEN": TOKEN,
            "TEMPORAL_ADDRESS": ts_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": ts_env.client.namespace,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starter.cli",
            "lre-reconcile",
            "--older-than-minutes",
            "0",
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        [printed] = json.loads(out)
        assert printed["letter_id"] == "W-5.r1.formal_notice.1" and printed["event"] == "refused"
        events = await handle.query("lre_events", result_type=list[LreEvent])
        assert [(e.event, e.provider_id) for e in events] == [
            (LreEventKind.REFUSED, dep.provider_id)
        ]
        assert h.record("W-5.r1.formal_notice.1").status == "refused"
        await handle.terminate()
