"""Run the real product processes on loopback for end-to-end tests: the LRE simulator, the
API and ``python worker.py``, each a subprocess configured only through the environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def poll(fn, until, timeout: float = 60.0, every: float = 0.3):
    """Call the async ``fn`` until ``until(result)`` holds; fail with the last value seen."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await fn()
        if until(last):
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not reached in {timeout}s; last value: {last}")


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


@dataclass
class Stack:
    env: dict[str, str]
    api_url: str
    sim_url: str
    worker_metrics_url: str
    data_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **env_overrides: str) -> subprocess.Popen:
        log = self.data_dir / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(args, cwd=ROOT, env={**self.env, **env_overrides}, stdout=open(log, "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self) -> subprocess.Popen:
        return self.start("worker", [sys.executable, "worker.py"])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=20)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


@contextmanager
def product_stack(temporal_address: str, data_dir: Path, *, task_queue: str, sim_seconds_per_day: float = 1.0,
                  accept_delay: float = 1.0, worker: bool = True):
    api_port, sim_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'precontentieux.db'}",
        "LRE_BASE_URL": f"http://127.0.0.1:{sim_port}/api/",
        "LRE_WEBHOOK_URL": f"http://127.0.0.1:{api_port}/v1/lre/webhook",
        "API_PORT": str(api_port),
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "PRECONTENTIEUX_ENV_FILE": str(data_dir / "none.env"),
        "LRE_SIM_ACCEPT_DELAY_SECONDS": str(accept_delay),
        "LRE_SIM_BOUNCE_DELAY_SECONDS": str(accept_delay),
        "LRE_SIM_WEBHOOK_RETRY_SECONDS": "1",
    }
    stack = Stack(env=env, api_url=f"http://127.0.0.1:{api_port}", sim_url=f"http://127.0.0.1:{sim_port}",
                  worker_metrics_url=f"http://127.0.0.1:{metrics_port}/metrics", data_dir=data_dir)
    cli = [sys.executable, "-m", "starter.cli"]
    try:
        sim = stack.start("lre-sim", [*cli, "lre-sim", "--port", str(sim_port), "--data-dir", str(data_dir / "sim"),
                                      "--seconds-per-day", str(sim_seconds_per_day)])
        api = stack.start("api", [*cli, "api", "--port", str(api_port)])
        wait_http(f"{stack.sim_url}/docs", sim, stack.logs["lre-sim"])
        wait_http(f"{stack.api_url}/healthz", api, stack.logs["api"])
        if worker:
            stack.start_worker()
        yield stack
    finally:
        stack.stop()
