"""Liveness/readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["operations"])

REQUESTS = Counter("precontentieux_api_requests_total", "API requests", ["method", "route", "status"])
LATENCY = Histogram("precontentieux_api_request_seconds", "API request latency", ["method", "route"])


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
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
