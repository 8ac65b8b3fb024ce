"""A local AR24-compatible LRE provider, for the embedded stack and the tests.

What it does, like the real thing (DOMAIN.md §1.4, §1.5):
- ``POST /api/mail/`` (form-data + ``attachment``) deposits a letter and answers at once
  with the deposit proof: a qualified timestamp (now), a unique id, a proof URL served
  here, the content's sha256. Mails persist in a SQLite file: restarts keep them.
- ``GET /api/mail/?id=`` and ``GET /api/mail/?ref_client=``; ``GET /api/proof/{id}/{kind}``.
- The recipient's outcome is chosen by the e-mail's local part: ``+refuse`` → refused,
  ``+negligence`` → negligence after the 15-day window (plus the day after, on a
  compressible clock: ``seconds_per_day``), ``+bounce`` → bounced, ``+wait`` → stays
  waiting, anything else → accepted (``AR``) after ``accept_delay_seconds``. An address
  whose domain ends in ``.invalid`` is refused at deposit (``invalid_recipient``).
- Each status change is posted to the webhook URL, signed ``X-LRE-Signature:
  t=<unix>,v1=<hmac-sha256 hex of "t." + body>``; a failed delivery is retried every
  ``webhook_retry_seconds`` (AR24: 15 min) up to ``webhook_max_attempts`` (AR24: 48).

Failure injection (issue 4), from env (``LRE_SIM_*``), CLI flags, or at run time through
``GET/POST /api/_admin/faults``: latency, 5xx rate, timeouts (the request is executed,
the answer never comes in time), maintenance mode, rate limiting, dropped and duplicated
webhooks; plus deterministic counters (``fail_next``, ``timeout_next``, ``drop_next``,
``duplicate_next``, ``rate_limit_next``) so a test knows exactly what happens.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.lre import AR24_PROOF_FIELDS, PROOF_KIND_OF_STATUS, ProviderStatus, sign_webhook
from models.settings import Settings, get_settings

log = logging.getLogger("lre_sim")

LEGAL_WINDOW_DAYS = 15  # CPCE R53-3: 15 days to accept or refuse


class Faults(BaseModel):
    """Failure-injection knobs; all mutable at run time through the admin endpoint."""

    latency_ms: int = 0
    error_rate: float = 0.0  # share of API calls answered 500 (before doing anything)
    timeout_rate: float = 0.0  # share of API calls executed then answered too late
    timeout_seconds: float = 30.0  # how late a "timeout" answers
    maintenance: bool = False  # every API call answers 503 {"status": "maintenance"}
    rate_limit_rate: float = 0.0  # share of API calls answered 429
    retry_after_seconds: float = 1.0
    drop_webhook_rate: float = 0.0  # share of status changes whose webhook is never sent
    duplicate_webhook_rate: float = 0.0  # share of webhooks delivered twice
    fail_next: int = 0
    timeout_next: int = 0
    rate_limit_next: int = 0
    drop_next: int = 0
    duplicate_next: int = 0
    reject_webhooks: bool = False  # provider side: pretend every delivery failed (retry)


class SimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRE_SIM_", extra="ignore")

    data_dir: Path | None = None  # default: <settings.data_dir>/lre-sim
    public_url: str | None = None  # base of proof URLs; default from host/port
    host: str = "127.0.0.1"
    port: int = 8081
    token: str | None = None  # default: settings.lre_token
    webhook_url: str | None = None  # default: settings.lre_webhook_url
    webhook_secret: str | None = None  # default: settings.lre_webhook_secret
    seconds_per_day: float = 86400.0  # compress the 15-day window: e.g. 2.0
    accept_delay_seconds: float = 5.0
    bounce_delay_seconds: float = 3.0
    webhook_retry_seconds: float = 900.0
    webhook_max_attempts: int = 48
    webhook_timeout_seconds: float = 10.0
    tick_seconds: float = 0.25
    seed: int | None = None
    # Initial fault knobs, e.g. LRE_SIM_LATENCY_MS=300 LRE_SIM_ERROR_RATE=0.1
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    maintenance: bool = False
    rate_limit_rate: float = 0.0
    drop_webhook_rate: float = 0.0
    duplicate_webhook_rate: float = 0.0

    def initial_faults(self) -> Faults:
        return Faults(**{k: getattr(self, k) for k in Faults.model_fields if hasattr(self, k)})


def _now() -> float:
    return time.time()


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def scenario_of(email: str) -> str:
    local = email.split("@", 1)[0].lower()
    for name in ("refuse", "negligence", "bounce", "wait"):
        if f"+{name}" in local:
            return name
    return "accept"


def proof_pdf(lines: list[str]) -> bytes:
    """A small, valid one-page PDF carrying the proof's text (Helvetica, no dependency)."""

    def esc(s: str) -> str:
        s = s.encode("latin-1", "replace").decode("latin-1")
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 11 Tf 56 780 Td 14 TL " + " ".join(f"({esc(l)}) '" for l in lines) + " ET"
    stream = text.encode("latin-1")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref_client TEXT, ref_dossier TEXT,
    to_lastname TEXT, to_firstname TEXT, to_company TEXT, to_email TEXT NOT NULL,
    dest_statut TEXT, eidas INTEGER NOT NULL, content TEXT, filename TEXT,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    deposited_at REAL NOT NULL, status TEXT NOT NULL, status_at REAL,
    scenario TEXT NOT NULL, outcome_due_at REAL, proofs TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS mails_ref_client ON mails(ref_client);
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL, mail_id INTEGER NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, last_error TEXT, created_at REAL NOT NULL
);
"""


class SimStore:
    """The simulator's persistence: mails, proofs and the webhook outbox."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        (data_dir / "attachments").mkdir(parents=True, exist_ok=True)
        (data_dir / "proofs").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            data_dir / "lre-sim.db", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def q(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def insert(self, sql: str, args: tuple) -> int:
        with self._lock:
            return int(self._db.execute(sql, args).lastrowid)

    def close(self) -> None:
        self._db.close()


class LreSimulator:
    def __init__(self, settings: Settings, sim: SimSettings) -> None:
        self.settings = settings
        self.sim = sim
        self.data_dir = sim.data_dir or settings.data_dir / "lre-sim"
        self.store = SimStore(self.data_dir)
        self.faults = sim.initial_faults()
        self.token = sim.token or settings.lre_token.get_secret_value()
        self.webhook_url = sim.webhook_url or settings.lre_webhook_url
        self.secret = sim.webhook_secret or settings.lre_webhook_secret.get_secret_value()
        host = "127.0.0.1" if sim.host in ("0.0.0.0", "::") else sim.host
        self.public_url = (sim.public_url or f"http://{host}:{sim.port}").rstrip("/")
        self.rng = random.Random(sim.seed)
        self.wakeup = asyncio.Event()

    # ------------------------------------------------------------------ mails

    def mail_json(self, row: sqlite3.Row) -> dict[str, Any]:
        proofs: dict[str, str] = json.loads(row["proofs"])
        out: dict[str, Any] = {
            "id": str(row["id"]),
            "type": "lre" if row["eidas"] else "ere",
            "status": row["status"],
            "date": _iso(row["deposited_at"]),
            "status_date": _iso(row["status_at"]),
            "ref_client": row["ref_client"],
            "ref_dossier": row["ref_dossier"],
            "to_email": row["to_email"],
            "to_lastname": row["to_lastname"],
            "to_firstname": row["to_firstname"],
            "to_company": row["to_company"],
            "dest_statut": row["dest_statut"],
            "eidas": row["eidas"],
            "sha256": row["sha256"],
            "size": row["size"],
        }
        for kind, field in AR24_PROOF_FIELDS.items():
            out[field] = (
                f"{self.public_url}/api/proof/{row['id']}/{kind}" if kind in proofs else None
            )
        return out

    def _write_proof(self, mail_id: int, kind: str, row: sqlite3.Row, at: float) -> None:
        lines = [
            "LRE SIMULATOR - proof of " + kind,
            f"Mail id: {mail_id}",
            f"Reference: {row['ref_client']} / {row['ref_dossier']}",
            f"Recipient: {row['to_firstname']} {row['to_lastname']} <{row['to_email']}>",
            f"Qualified timestamp: {_iso(at)}",
            f"Content SHA-256: {row['sha256']}",
            "Type: " + ("LRE qualifiee eIDAS" if row["eidas"] else "ERE simple"),
        ]
        (self.data_dir / "proofs" / f"{mail_id}-{kind}.pdf").write_bytes(proof_pdf(lines))

    def deposit(self, fields: dict[str, Any], pdf: bytes) -> dict[str, Any]:
        now = _now()
        scenario = scenario_of(fields["to_email"])
        delay = {
            "accept": self.sim.accept_delay_seconds,
            "refuse": self.sim.accept_delay_seconds,
            "bounce": self.sim.bounce_delay_seconds,
            # the window starts the day after notification; proof the day after expiry
            "negligence": (LEGAL_WINDOW_DAYS + 1) * self.sim.seconds_per_day,
        }.get(scenario)
        sha = hashlib.sha256(pdf).hexdigest()
        mail_id = self.store.insert(
            "INSERT INTO mails (ref_client, ref_dossier, to_lastname, to_firstname, to_company,"
            " to_email, dest_statut, eidas, content, filename, sha256, size, deposited_at, status,"
            " status_at, scenario, outcome_due_at, proofs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                fields["ref_client"],
                fields["ref_dossier"],
                fields["to_lastname"],
                fields["to_firstname"],
                fields["to_company"],
                fields["to_email"],
                fields["dest_statut"],
                fields["eidas"],
                fields["content"],
                fields["filename"],
                sha,
                len(pdf),
                now,
                ProviderStatus.WAITING.value,
                now,
                scenario,
                None if delay is None else now + delay,
                json.dumps({"deposit": True}),
            ),
        )
        (self.data_dir / "attachments" / f"{mail_id}.pdf").write_bytes(pdf)
        row = self.get_row(mail_id)
        assert row is not None
        self._write_proof(mail_id, "deposit", row, now)
        self.wakeup.set()
        return self.mail_json(row)

    def get_row(self, mail_id: int) -> sqlite3.Row | None:
        rows = self.store.q("SELECT * FROM mails WHERE id = ?", (mail_id,))
        return rows[0] if rows else None

    def set_status(self, mail_id: int, status: ProviderStatus) -> None:
        row = self.get_row(mail_id)
        if row is None or row["status"] != ProviderStatus.WAITING.value:
            return
        now = _now()
        kind = PROOF_KIND_OF_STATUS[status]
        proofs = json.loads(row["proofs"]) | {kind: True}
        self._write_proof(mail_id, kind, row, now)
        self.store.q(
            "UPDATE mails SET status = ?, status_at = ?, outcome_due_at = NULL, proofs = ? WHERE id = ?",
            (status.value, now, json.dumps(proofs), mail_id),
        )
        row = self.get_row(mail_id)
        body = {
            "event_id": f"evt_{mail_id}_{status.value}",
            "event": "mail.status_changed",
            "occurred_at": _iso(now),
            "mail": self.mail_json(row),
        }
        state = "pending"
        if self.faults.drop_next > 0:
            self.faults.drop_next -= 1
            state = "dropped"
        elif self.faults.drop_webhook_rate and self.rng.random() < self.faults.drop_webhook_rate:
            state = "dropped"
        self.store.insert(
            "INSERT INTO webhooks (event_id, mail_id, body, state, next_attempt_at, created_at)"
            " VALUES (?,?,?,?,?,?)",
            (body["event_id"], mail_id, json.dumps(body), state, now, now),
        )
        if state == "dropped":
            log.info("webhook %s dropped (fault injection)", body["event_id"])

    def apply_due_outcomes(self) -> None:
        outcome = {
            "accept": ProviderStatus.AR,
            "refuse": ProviderStatus.REFUSED,
            "negligence": ProviderStatus.NEGLIGENCE,
            "bounce": ProviderStatus.BOUNCED,
        }
        for row in self.store.q(
            "SELECT id, scenario FROM mails WHERE status = 'waiting' AND outcome_due_at <= ?",
            (_now(),),
        ):
            self.set_status(row["id"], outcome[row["scenario"]])

    # ------------------------------------------------------------------ webhooks

    async def deliver_due_webhooks(self, http: httpx.AsyncClient) -> None:
        for row in self.store.q(
            "SELECT * FROM webhooks WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id",
            (_now(),),
        ):
            copies = 1
            if self.faults.duplicate_next > 0:
                self.faults.duplicate_next -= 1
                copies = 2
            elif (
                self.faults.duplicate_webhook_rate
                and self.rng.random() < self.faults.duplicate_webhook_rate
            ):
                copies = 2
            ok, error = False, None
            for _ in range(copies):
                ok_one, error = await self._post_webhook(http, row["body"])
                ok = ok or ok_one
            attempts = row["attempts"] + 1
            if ok:
                state, next_at = "delivered", row["next_attempt_at"]
            elif attempts >= self.sim.webhook_max_attempts:
                state, next_at = "failed", row["next_attempt_at"]
            else:
                state, next_at = "pending", _now() + self.sim.webhook_retry_seconds
            self.store.q(
                "UPDATE webhooks SET state = ?, attempts = ?, deliveries = deliveries + ?,"
                " next_attempt_at = ?, last_error = ? WHERE id = ?",
                (state, attempts, copies, next_at, error, row["id"]),
            )

    async def _post_webhook(
        self, http: httpx.AsyncClient, body_json: str
    ) -> tuple[bool, str | None]:
        if self.faults.reject_webhooks:
            return False, "provider-side failure (fault injection)"
        body = json.loads(body_json)
        body["delivery_id"] = uuid.uuid4().hex
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-LRE-Signature": sign_webhook(self.secret, raw, int(_now())),
        }
        try:
            resp = await http.post(self.webhook_url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if resp.is_success:
            return True, None
        return False, f"HTTP {resp.status_code}: {resp.text[:200]}"

    async def run_background(self) -> None:
        async with httpx.AsyncClient(timeout=self.sim.webhook_timeout_seconds) as http:
            while True:
                try:
                    self.apply_due_outcomes()
                    await self.deliver_due_webhooks(http)
                except Exception:  # the loop must survive a bad row or a full disk
                    log.exception("lre-sim background step failed")
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=self.sim.tick_seconds)
                except TimeoutError:
                    pass
                self.wakeup.clear()

    # ------------------------------------------------------------------ faults

    def _take(self, counter: str, rate: float) -> bool:
        if getattr(self.faults, counter) > 0:
            setattr(self.faults, counter, getattr(self.faults, counter) - 1)
            return True
        return bool(rate) and self.rng.random() < rate

    async def before_call(self) -> Response | None:
        """Faults that answer before the call is executed (nothing done at the provider)."""
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.faults.maintenance:
            return JSONResponse(
                {"status": "maintenance", "message": "maintenance in progress"}, status_code=503
            )
        if self._take("rate_limit_next", self.faults.rate_limit_rate):
            return JSONResponse(
                {"status": "ERROR", "slug": "rate_limited", "message": "slow down"},
                status_code=429,
                headers={"Retry-After": f"{self.faults.retry_after_seconds:g}"},
            )
        if self._take("fail_next", self.faults.error_rate):
            return JSONResponse(
                {"status": "ERROR", "slug": "internal_error", "message": "simulated server error"},
                status_code=500,
            )
        return None

    async def after_call(self) -> None:
        """A timeout: the call was executed but the answer comes too late."""
        if self._take("timeout_next", self.faults.timeout_rate):
            await asyncio.sleep(self.faults.timeout_seconds)


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"status": "SUCCESS", "result": result})


def _err(status: int, slug: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "ERROR", "slug": slug, "message": message}, status_code=status)


def _bad_recipient(email: str) -> str | None:
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email:
        return f"invalid e-mail address {email!r}"
    if domain.lower().endswith(".invalid"):
        return f"recipient domain {domain!r} does not exist"
    return None


def create_app(settings: Settings | None = None, sim: SimSettings | None = None) -> FastAPI:
    """The simulator app. Tests pass ``SimSettings(data_dir=…, webhook_url=…, …)``."""
    settings = settings or get_settings()
    sim = sim or SimSettings()
    state = LreSimulator(settings, sim)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.wakeup = asyncio.Event()
        task = asyncio.create_task(state.run_background())
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            state.store.close()

    app = FastAPI(title="LRE simulator (AR24-compatible subset)", lifespan=lifespan)
    app.state.sim = state

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.url.path.startswith("/api/"):
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip() or request.query_params.get("token", "")
            if not hmac.compare_digest(token.encode(), state.token.encode()):
                return _err(401, "invalid_token", "missing or invalid token")
        return await call_next(request)

    @app.post("/api/mail/")
    async def post_mail(
        to_email: str = Form(...),
        to_lastname: str = Form(""),
        to_firstname: str = Form(""),
        to_company: str = Form(""),
        dest_statut: str = Form("particulier"),
        ref_client: str = Form(""),
        ref_dossier: str = Form(""),
        content: str = Form(""),
        eidas: str = Form("1"),
        attachment: UploadFile = File(...),
    ):
        if (early := await state.before_call()) is not None:
            return early
        if (reason := _bad_recipient(to_email)) is not None:
            return _err(400, "invalid_recipient", reason)
        if dest_statut not in ("particulier", "professionnel"):
            return _err(
                400, "invalid_dest_statut", "dest_statut must be particulier or professionnel"
            )
        if not (to_lastname or to_company):
            return _err(400, "missing_recipient_name", "to_lastname or to_company is required")
        pdf = await attachment.read()
        if not pdf.startswith(b"%PDF-"):
            return _err(400, "invalid_attachment", "the attachment is not a PDF")
        mail = state.deposit(
            {
                "to_email": to_email,
                "to_lastname": to_lastname,
                "to_firstname": to_firstname,
                "to_company": to_company,
                "dest_statut": dest_statut,
                "ref_client": ref_client,
                "ref_dossier": ref_dossier,
                "content": content,
                "eidas": 0 if eidas.strip() in ("0", "false", "False", "") else 1,
                "filename": attachment.filename or "attachment.pdf",
            },
            pdf,
        )
        await state.after_call()
        return _ok(mail)

    @app.get("/api/mail/")
    async def get_mail(id: str | None = None, ref_client: str | None = None):
        if (early := await state.before_call()) is not None:
            return early
        if id is not None:
            row = state.get_row(int(id)) if id.isdigit() else None
            if row is None:
                return _err(404, "mail_not_found", f"no mail with id {id}")
            await state.after_call()
            return _ok(state.mail_json(row))
        if ref_client is not None:
            rows = state.store.q(
                "SELECT * FROM mails WHERE ref_client = ? ORDER BY id", (ref_client,)
            )
            await state.after_call()
            return _ok([state.mail_json(r) for r in rows])
        return _err(400, "missing_parameter", "give id or ref_client")

    @app.get("/api/proof/{mail_id}/{kind}")
    async def get_proof(mail_id: int, kind: str):
        if (early := await state.before_call()) is not None:
            return early
        path = state.data_dir / "proofs" / f"{mail_id}-{kind}.pdf"
        if kind not in AR24_PROOF_FIELDS or not path.exists():
            return _err(404, "proof_not_found", f"no {kind} proof for mail {mail_id}")
        return Response(path.read_bytes(), media_type="application/pdf")

    @app.get("/api/mail/{mail_id}/attachment")
    async def get_attachment(mail_id: int):
        path = state.data_dir / "attachments" / f"{mail_id}.pdf"
        if not path.exists():
            return _err(404, "mail_not_found", f"no mail with id {mail_id}")
        return Response(path.read_bytes(), media_type="application/pdf")

    # ------------------------------------------------------------------ admin

    @app.get("/api/_admin/faults")
    async def get_faults():
        return state.faults.model_dump()

    @app.post("/api/_admin/faults")
    async def set_faults(patch: dict[str, Any]):
        unknown = set(patch) - set(Faults.model_fields)
        if unknown:
            return _err(422, "unknown_fault", f"unknown knobs: {sorted(unknown)}")
        state.faults = Faults(**(state.faults.model_dump() | patch))
        return state.faults.model_dump()

    @app.get("/api/_admin/mails")
    async def all_mails():
        return [state.mail_json(r) for r in state.store.q("SELECT * FROM mails ORDER BY id")]

    @app.get("/api/_admin/webhooks")
    async def all_webhooks():
        return [
            {
                k: r[k]
                for k in (
                    "id",
                    "event_id",
                    "mail_id",
                    "state",
                    "attempts",
                    "deliveries",
                    "last_error",
                )
            }
            for r in state.store.q("SELECT * FROM webhooks ORDER BY id")
        ]

    @app.post("/api/_admin/mails/{mail_id}/status")
    async def force_status(mail_id: int, body: dict[str, str]):
        """Make the recipient act now (tests, demos): ``{"status": "AR"|"refused"|…}``."""
        try:
            status = ProviderStatus(body.get("status", ""))
        except ValueError:
            return _err(
                422, "invalid_status", f"status must be one of {[s.value for s in ProviderStatus]}"
            )
        if state.get_row(mail_id) is None:
            return _err(404, "mail_not_found", f"no mail with id {mail_id}")
        state.set_status(mail_id, status)
        state.wakeup.set()
        return state.mail_json(state.get_row(mail_id))

    @app.post("/api/_admin/webhooks/retry")
    async def retry_webhooks():
        """Deliver pending webhooks now instead of waiting for the next 15-minute retry."""
        state.store.q("UPDATE webhooks SET next_attempt_at = ? WHERE state = 'pending'", (_now(),))
        state.wakeup.set()
        return {"status": "SUCCESS"}

    return app
