"""CLI: ``precontentieux lre-sim`` (the local AR24-compatible provider) and
``precontentieux lre-reconcile`` (ask the provider about letters whose webhook is late)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("lre-sim")(lre_sim)
    app.command("lre-reconcile")(lre_reconcile)


def lre_sim(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8081, help="Listen port (settings.lre_base_url points at 8081)."),
    data_dir: Path | None = typer.Option(None, help="Where mails persist (default .data/lre-sim)."),
    webhook_url: str | None = typer.Option(None, help="Default: settings.lre_webhook_url."),
    seconds_per_day: float | None = typer.Option(
        None, help="Compressed clock: length of one day of the 15-day window, in seconds."
    ),
    accept_delay: float | None = typer.Option(
        None, help="Seconds before a default recipient accepts."
    ),
    webhook_retry_seconds: float | None = typer.Option(None, help="AR24: 900 (15 min)."),
    webhook_max_attempts: int | None = typer.Option(None, help="AR24: 48."),
    latency_ms: int | None = typer.Option(None, help="Added to every API call."),
    error_rate: float | None = typer.Option(None, help="Share of API calls answered 500."),
    timeout_rate: float | None = typer.Option(
        None, help="Share of calls executed but answered too late."
    ),
    maintenance: bool | None = typer.Option(None, help="Answer every call 503 maintenance."),
    rate_limit_rate: float | None = typer.Option(None, help="Share of API calls answered 429."),
    drop_webhook_rate: float | None = typer.Option(None, help="Share of webhooks never sent."),
    duplicate_webhook_rate: float | None = typer.Option(None, help="Share of webhooks sent twice."),
    seed: int | None = typer.Option(None, help="Random seed for the fault rates."),
) -> None:
    """Run the local AR24-compatible LRE provider simulator (flags override LRE_SIM_* env)."""
    import uvicorn

    from models.settings import get_settings
    from simulators.lre_sim import SimSettings, create_app

    overrides = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "webhook_url": webhook_url,
        "seconds_per_day": seconds_per_day,
        "accept_delay_seconds": accept_delay,
        "webhook_retry_seconds": webhook_retry_seconds,
        "webhook_max_attempts": webhook_max_attempts,
        "latency_ms": latency_ms,
        "error_rate": error_rate,
        "timeout_rate": timeout_rate,
        "maintenance": maintenance,
        "rate_limit_rate": rate_limit_rate,
        "drop_webhook_rate": drop_webhook_rate,
        "duplicate_webhook_rate": duplicate_webhook_rate,
        "seed": seed,
    }
    sim = SimSettings(**{k: v for k, v in overrides.items() if v is not None})
    typer.echo(
        f"LRE simulator on http://{host}:{port}/api/ (webhooks → "
        f"{sim.webhook_url or get_settings().lre_webhook_url})"
    )
    uvicorn.run(create_app(get_settings(), sim), host=host, port=port, log_level="warning")


def lre_reconcile(
    older_than_minutes: float = typer.Option(
        60.0, help="Only letters deposited (or stuck sending) longer ago than this."
    ),
) -> None:
    """Fetch the provider status of letters still waiting and signal their outcomes."""
    from datetime import timedelta

    from activities.db import make_engine
    from activities.lre_client import LreClient
    from activities.sending import LetterReconciler, signal_lre_event
    from models.settings import get_settings
    from starter.temporal_client import connect

    async def run() -> list:
        settings = get_settings()
        client = await connect(settings)
        async with LreClient.from_settings(settings) as lre:
            reconciler = LetterReconciler(
                make_engine(settings.resolved_database_url), lre, settings.letters_dir
            )
            return await reconciler.reconcile(
                timedelta(minutes=older_than_minutes),
                lambda contract_id, event: signal_lre_event(client, contract_id, event),
            )

    events = asyncio.run(run())
    typer.echo(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
