"""Liveness/readiness, Prometheus metrics, and the gateway's error rules.

``/metrics`` serves the API's own metrics (requests by route template, status and latency,
import and payment outcomes) followed by the Temporal SDK's client metrics: the SDK
(a Rust core) exports them through a ``temporalio.runtime.Runtime`` with a
``PrometheusConfig`` bound to a loopback port, which ``/metrics`` reads and appends, so one
scrape target shows both.

Error rules (DESIGN.md): bad input is a 4xx with field and reason, never a 500; Temporal
unreachable is a 503 the caller can retry; anything else is a real bug: logged with its
traceback and answered with a JSON 500 that names no internals.
"""

from __future__ import annotations

import logging
import socket
import time

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from temporalio.service import RPCError, RPCStatusCode

from starter.cases import CaseError

log = logging.getLogger("precontentieux.api")
router = APIRouter(tags=["operations"])

REQUESTS = Counter("precontentieux_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram("precontentieux_api_request_seconds", "API request latency", ["method", "route"])
IMPORT_LINES = Counter("precontentieux_import_lines_total", "Bulk-import lines by outcome", ["outcome"])
BANK_CREDITS = Counter("precontentieux_bank_credits_total", "Bank-statement credits by outcome", ["outcome"])

_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
_sdk_metrics_address: str | None = None


def install_temporal_metrics() -> str | None:
    """Make the default Temporal runtime export SDK metrics on a loopback port (once per process).

    Must run before the first client is created. Returns the ``host:port`` it listens on.
    """
    global _sdk_metrics_address
    if _sdk_metrics_address is not None:
        return _sdk_metrics_address
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    try:
        Runtime.set_default(
            Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address))),
            error_if_already_set=True,
        )
    except RuntimeError:  # a client already exists in this process: keep its runtime
        log.warning("Temporal runtime already created; SDK metrics not exported by the API")
        return None
    _sdk_metrics_address = address
    return address


def error_body(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict = {"detail": message}
    if field:
        body["errors"] = [{"field": field, "reason": message}]
    return JSONResponse(status_code=status, content=body)


def install(app: FastAPI) -> None:
    """Request metrics middleware and the error handlers of the gateway."""

    @app.middleware("http")
    async def _metrics(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(request.method, label, str(status)).inc()
            LATENCY.labels(request.method, label).observe(time.perf_counter() - start)

    @app.exception_handler(CaseError)
    async def _case_error(_request: Request, err: CaseError) -> JSONResponse:
        return error_body(err.status, err.message, err.field)

    @app.exception_handler(RPCError)
    async def _rpc_error(request: Request, err: RPCError) -> JSONResponse:
        if err.status in _UNAVAILABLE:
            log.warning("Temporal unavailable for %s %s: %s", request.method, request.url.path, err)
            return JSONResponse(
                status_code=503,
                headers={"Retry-After": "5"},
                content={"detail": "the workflow service (Temporal) is unavailable; retry later"},
            )
        log.exception("Temporal error on %s %s", request.method, request.url.path, exc_info=err)
        return JSONResponse(status_code=502, content={"detail": f"workflow service error: {err.status.name}"})

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=err)
        return JSONResponse(status_code=500, content={"detail": "internal error; it has been logged"})


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: health must answer
        checks["database"] = f"error: {exc.__class__.__name__}"
    client = request.app.state.temporal
    try:
        await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "degraded", "checks": checks}


@router.get("/metrics")
async def metrics() -> Response:
    body = generate_latest()
    if _sdk_metrics_address:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                sdk = await http.get(f"http://{_sdk_metrics_address}/metrics")
            body += b"\n# Temporal SDK (client) metrics\n" + sdk.content
        except httpx.HTTPError as exc:
            body += f"\n# Temporal SDK metrics unavailable: {exc.__class__.__name__}\n".encode()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
