"""The back-office gateway (FastAPI). Routers live in sibling modules.

Shared state on ``app.state``: ``settings``, ``temporal`` (a connected Temporal client,
created lazily at startup), ``engine`` (SQLAlchemy engine of the read models),
``api_keys`` (key → role).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.client import Client

from activities.db import make_engine
from models.settings import Settings, get_settings
from starter.api import disputes, health, imports, lre_webhook, payments_import, unpaid
from starter.api.auth import parse_api_keys


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)),
            "reason": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": "invalid input", "errors": errors})


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.temporal is None:
            from starter.temporal_client import connect

            health.install_temporal_metrics()  # before the first client: SDK metrics on /metrics
            app.state.temporal = await connect(settings)
        yield

    app = FastAPI(
        title="precontentieux",
        version="0.1.0",
        description="Back-office gateway: unpaid-premium recovery cases, payments, disputes, LRE webhooks.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.temporal = temporal
    app.state.engine = make_engine(settings.resolved_database_url)
    app.state.api_keys = parse_api_keys(settings.api_keys)
    app.add_exception_handler(RequestValidationError, _validation_error)
    health.install(app)  # request metrics, 503 when Temporal is down, JSON 500 for real bugs

    app.include_router(health.router)
    app.include_router(imports.router)  # before unpaid: /import is not a contract id
    app.include_router(payments_import.router)
    app.include_router(unpaid.router)
    app.include_router(lre_webhook.router)
    app.include_router(disputes.router)
    return app
