"""``precontentieux dev`` (what ``make run`` calls): the whole embedded stack comes up on
free ports, loads the demo cases once, answers on the API, and stops every process it
started on SIGTERM; a restart keeps the data and does not load the demo twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.stack import ROOT, free_port

pytestmark = pytest.mark.devserver


def _start_dev(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "starter.cli", "dev"], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def _wait_running(proc: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "precontentieux is running" in text:
            return text
        if proc.poll() is not None:
            raise AssertionError(f"dev exited {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"dev not running after {timeout}s:\n{log.read_text()[-3000:]}")


def _children_alive(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(data_dir) in line and "ps -eo" not in line]


def test_dev_starts_everything_loads_demo_once_and_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    tport, uport, aport, sport = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{tport}",
        "UI_URL": f"http://127.0.0.1:{uport}",
        "API_PORT": str(aport),
        "LRE_BASE_URL": f"http://127.0.0.1:{sport}/api/",
        "LRE_WEBHOOK_URL": f"http://127.0.0.1:{aport}/v1/lre/webhook",
        "PRECONTENTIEUX_ENV_FILE": str(tmp_path / "none.env"),
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    log = tmp_path / "dev.log"
    proc = _start_dev(env, log)
    try:
        text = _wait_running(proc, log)
        assert "Loaded" in text and f"http://127.0.0.1:{uport}" in text
        headers = {"Authorization": "Bearer dev-manager-key"}
        deadline = time.monotonic() + 30
        while True:  # visibility is eventually consistent
            items = httpx.get(f"http://127.0.0.1:{aport}/v1/unpaid-cases?page_size=100", headers=headers,
                              timeout=10).json()["items"]
            if len(items) >= 10 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ids = {i["contract_id"] for i in items}
        assert {"DEMO-IARD-001", "DEMO-VIE-007", "REEL-IARD-101"} <= ids
        assert httpx.get(f"http://127.0.0.1:{uport}/", timeout=10).status_code == 200  # the Web UI
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    time.sleep(1)
    assert _children_alive(data) == []
    # restart on the same data: the cases are still there, the demo is not loaded again
    proc = _start_dev(env, log.with_suffix(".2.log"))
    try:
        text = _wait_running(proc, log.with_suffix(".2.log"))
        assert "Loaded" not in text
        r = httpx.get(f"http://127.0.0.1:{aport}/v1/unpaid-cases/DEMO-IARD-002",
                      headers={"Authorization": "Bearer dev-manager-key"}, timeout=30)
        assert r.status_code == 200 and r.json()["amount_paid"] in ("42.30", "42.3")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert _children_alive(data) == []
