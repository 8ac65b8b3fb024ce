"""The simulator itself: the ``precontentieux lre-sim`` command, its env/flag knobs,
persistence across process restarts, AR24-like webhook retries, the admin endpoint."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from activities.lre_client import LreClient
from models.lre import LreMaintenance, LreTemporaryError, ProviderSendRequest
from simulators.lre_sim import create_app, proof_pdf
from tests.test_lre_support import (
    TOKEN,
    ServerThread,
    SimAdmin,
    eventually,
    free_port,
    make_settings,
    make_sim_settings,
)

ROOT = Path(__file__).resolve().parent.parent
PDF = proof_pdf(["lettre"])


def req(letter_id: str, email: str = "jeanne+wait@example.org") -> ProviderSendRequest:
    return ProviderSendRequest(
        letter_id=letter_id, contract_id="C-1", to_email=email, to_lastname="Martin", pdf=PDF
    )


def start_cli(port: int, data_dir: Path, *flags: str, env: dict[str, str] | None = None):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "starter.cli",
            "lre-sim",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *flags,
        ],
        cwd=ROOT,
        env=os.environ | {"LRE_TOKEN": TOKEN} | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lre-sim exited: {proc.stdout.read()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("lre-sim did not start")


def stop_cli(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


async def test_cli_flags_env_knobs_and_persistence_across_process_restarts(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/"
    proc = start_cli(port, tmp_path, "--maintenance", env={"LRE_SIM_LATENCY_MS": "150"})
    try:
        admin = SimAdmin(f"http://127.0.0.1:{port}")
        faults = (await admin.http.get("faults")).json()
        assert faults["maintenance"] is True and faults["latency_ms"] == 150
        async with LreClient(base, TOKEN, timeout=5) as client:
            with pytest.raises(LreMaintenance):
                await client.send(req("L-cli"))
            await admin.faults(maintenance=False, latency_ms=0)
            first = await client.send(req("L-cli"))
        await admin.aclose()
    finally:
        out = stop_cli(proc)
    assert f"http://127.0.0.1:{port}/api/" in out
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in out

    proc = start_cli(port, tmp_path)  # same data dir, new process
    try:
        async with LreClient(base, TOKEN, timeout=5) as client:
            again = await client.find_by_reference("L-cli")
            assert again is not None and again.id == first.id
            assert again.deposited_at == first.deposited_at
            assert (await client.download(again.proofs["deposit"])).startswith(b"%PDF-")
    finally:
        stop_cli(proc)


async def test_failed_webhooks_are_retried_then_given_up_like_ar24(tmp_path):
    sim_port = free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=free_port())  # nobody there
    server = ServerThread(
        create_app(
            settings,
            make_sim_settings(
                settings, sim_port=sim_port, webhook_retry_seconds=0.2, webhook_max_attempts=3
            ),
        ),
        sim_port,
    ).start()
    admin = SimAdmin(server.url)
    try:
        async with LreClient(settings.lre_base_url, TOKEN) as client:
            await client.send(req("L-retry", email="jeanne@example.org"))

        async def given_up():
            hooks = await admin.webhooks()
            return hooks if hooks and hooks[0]["state"] == "failed" else None

        [hook] = await eventually(given_up, what="the webhook to be given up")
        assert hook["attempts"] == 3 and hook["deliveries"] == 3
        assert "ConnectError" in hook["last_error"]
    finally:
        await admin.aclose()
        server.stop()


async def test_admin_endpoint_is_authenticated_and_validates_knobs(tmp_path):
    sim_port = free_port()
    settings = make_settings(tmp_path, sim_port=sim_port, api_port=free_port())
    server = ServerThread(
        create_app(settings, make_sim_settings(settings, sim_port=sim_port)), sim_port
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"{server.url}/api/") as http:
            r = await http.post("_admin/faults", json={"maintenance": True})
            assert r.status_code == 401 and r.json()["slug"] == "invalid_token"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            r = await http.post("_admin/faults", json={"explode": True}, headers=auth)
            assert r.status_code == 422 and "explode" in r.json()["message"]
            r = await http.post("_admin/mails/1/status", json={"status": "AR"}, headers=auth)
            assert r.status_code == 404
            r = await http.post(
                "mail/",
                data={"to_email": "a@b.org", "to_lastname": "A"},
                files={"attachment": ("x.txt", b"not a pdf", "text/plain")},
                headers=auth,
            )
            assert r.status_code == 400 and r.json()["slug"] == "invalid_attachment"
        async with LreClient(settings.lre_base_url, TOKEN, timeout=1.0) as client:
            admin = SimAdmin(server.url)
            await admin.faults(latency_ms=1500)  # slower than the client's timeout
            with pytest.raises(LreTemporaryError) as info:
                await client.find_by_reference("x")
            assert info.value.code == "timeout"
            await admin.faults(latency_ms=0)
            await admin.aclose()
            await asyncio.sleep(0.6)  # let the slow request finish server-side
    finally:
        server.stop()
