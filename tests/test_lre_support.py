"""Shared helpers for the LRE tests (no tests here): real servers on loopback, a real PDF
renderer, letter contexts.

The simulator and the webhook API run under uvicorn in threads on free ports; the
database is a real SQLite file; PDFs are real WeasyPrint output.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.db import make_engine
from models.letters import LetterContext, RenderedLetter
from models.payloads import (
    Address,
    Channel,
    Installment,
    LetterKind,
    Policyholder,
    Regime,
    UnpaidKind,
)
from models.policy import SenderIdentity
from models.settings import Settings
from simulators.lre_sim import SimSettings
from starter.api import lre_webhook
from starter.api.auth import parse_api_keys
from tests.stack import free_port  # noqa: F401  (re-exported to the LRE tests)

T = TypeVar("T")
TOKEN = "test-lre-token"
SECRET = "test-webhook-secret"


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:``port`` in a background thread."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def make_settings(tmp: Path, *, sim_port: int, api_port: int) -> Settings:
    return Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'app.db'}",
        lre_base_url=f"http://127.0.0.1:{sim_port}/api/",
        lre_token=TOKEN,
        lre_webhook_secret=SECRET,
        lre_webhook_url=f"http://127.0.0.1:{api_port}/v1/lre/webhook",
        lre_timeout_seconds=2.0,
        api_keys="bo-key:backoffice,mgr-key:manager",
    )


def make_sim_settings(settings: Settings, *, sim_port: int, **overrides: Any) -> SimSettings:
    base = dict(
        data_dir=settings.data_dir / "lre-sim",
        host="127.0.0.1",
        port=sim_port,
        accept_delay_seconds=0.3,
        bounce_delay_seconds=0.3,
        seconds_per_day=0.05,  # the 15-day window lasts 0.8 s
        webhook_retry_seconds=0.5,
        webhook_max_attempts=48,
        tick_seconds=0.05,
        timeout_seconds=4.0,
        seed=7,
    )
    return SimSettings(**(base | overrides))


class HtmlPdfRenderer:
    """A small real renderer (WeasyPrint) with the interface of the letters renderer, so
    these tests do not depend on the templates: real PDF bytes, real hash."""

    calls = 0

    def render(self, ctx: LetterContext, sender: SenderIdentity) -> RenderedLetter:
        import weasyprint

        HtmlPdfRenderer.calls += 1
        html = (
            f"<html><body><p>{sender.name}</p><h1>Lettre {ctx.kind.value}</h1>"
            f"<p>Contrat {ctx.contract_id} — destinataire {ctx.recipient.name}</p>"
            f"<p>Référence {ctx.letter_id}, le {ctx.letter_date.isoformat()}</p></body></html>"
        )
        pdf = weasyprint.HTML(string=html).write_pdf()
        return RenderedLetter(pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest(), page_count=1)


def letter_ctx(
    letter_id: str,
    contract_id: str,
    *,
    email: str | None = "jeanne.martin@example.org",
    channel: Channel = Channel.LRE,
    consent: bool = True,
    kind: LetterKind = LetterKind.FORMAL_NOTICE,
) -> LetterContext:
    recipient = Policyholder(
        name="Jeanne Martin",
        email=email,
        lre_consent=consent,
        address=Address(line1="3 rue des Lilas", postal_code="69003", city="Lyon"),
    )
    return LetterContext(
        letter_id=letter_id,
        kind=kind,
        channel=channel,
        contract_id=contract_id,
        portfolio="default",
        regime=Regime.IARD,
        unpaid_kind=UnpaidKind.TOTAL,
        recipient=recipient,
        policyholder_name=recipient.name,
        letter_date=date(2026, 11, 13),
        installments=[Installment(due_date=date(2026, 11, 1), amount="120.50")],
    )


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


class SimAdmin:
    """The simulator's admin endpoints, over real HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/_admin/",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )

    async def faults(self, **patch: Any) -> dict:
        r = await self.http.post("faults", json=patch)
        r.raise_for_status()
        return r.json()

    async def mails(self, ref_client: str | None = None) -> list[dict]:
        r = await self.http.get("mails")
        r.raise_for_status()
        return [m for m in r.json() if ref_client is None or m["ref_client"] == ref_client]

    async def webhooks(self) -> list[dict]:
        r = await self.http.get("webhooks")
        r.raise_for_status()
        return r.json()

    async def retry_webhooks(self) -> None:
        (await self.http.post("webhooks/retry")).raise_for_status()

    async def aclose(self) -> None:
        await self.http.aclose()


@asynccontextmanager
async def running(server: ServerThread):
    server.start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def api_app(settings: Settings, temporal_target: str, namespace: str) -> FastAPI:
    """The webhook router on an app with ``starter.api.app``'s state conventions."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.temporal = await Client.connect(
            temporal_target, namespace=namespace, data_converter=pydantic_data_converter, lazy=True
        )
        yield
        if getattr(app.state, "lre", None) is not None:
            await app.state.lre.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    app.state.temporal = None
    app.state.engine = make_engine(settings.resolved_database_url)
    app.state.api_keys = parse_api_keys(settings.api_keys)
    app.include_router(lre_webhook.router)
    return app


def real_api_app(settings: Settings, temporal_target: str, namespace: str) -> FastAPI:
    """The project's real gateway (``starter.api.app.create_app``) on the test Temporal."""
    from starter.api.app import create_app

    return create_app(
        settings.model_copy(
            update={"temporal_address": temporal_target, "temporal_namespace": namespace}
        )
    )
