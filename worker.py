"""Worker entry point: registers every workflow and activity on the task queue.

``python worker.py`` (or ``precontentieux worker``) honours the settings, so the same
worker runs against the dev server, the test server or a production cluster.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from models.settings import Settings, get_settings
from workflows.registry import ALL_WORKFLOWS

# Imported once outside the sandbox instead of on every workflow run (DESIGN.md pitfalls).
PASSTHROUGH_MODULES = ("models", "pydantic", "pydantic_core", "sqlmodel", "sqlalchemy", "holidays", "dateutil", "yaml")


def precompile_workflows() -> None:
    """Write the bytecode of the workflow modules. The sandbox re-imports them for every
    workflow run; without a .pyc (PYTHONDONTWRITEBYTECODE, a read-only install) each run
    compiles them from source, which measured ~20 % of the worker's CPU on the import bench."""
    import compileall
    from pathlib import Path

    try:
        compileall.compile_dir(Path(__file__).resolve().parent / "workflows", quiet=2)
    except OSError:  # read-only tree: the import still works, only slower
        pass


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client,
    settings: Settings,
    *,
    activities: Sequence[Any] | None = None,
    task_queue: str | None = None,
) -> Worker:
    precompile_workflows()
    if activities is None:
        from activities.registry import build_activities

        activities = build_activities(settings)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=ALL_WORKFLOWS,
        activities=list(activities),
        activity_executor=ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities),
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        workflow_runner=sandbox_runner(),
    )


async def run_worker(settings: Settings | None = None) -> None:
    from starter.temporal_client import connect

    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.worker_metrics_address:
        from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

        # Task latencies, slots, poll counts… of the SDK, scraped at http://<address>/metrics
        Runtime.set_default(
            Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)))
        )
    client = await connect(settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("precontentieux.worker").info(
        "worker started on %s / %s / task queue %s",
        settings.temporal_address, settings.temporal_namespace, settings.temporal_task_queue,
    )
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(run_worker())
