"""``precontentieux status | pay | hold | resume | cancel | list`` as a person runs them:
real subprocesses against ``python worker.py``, the API and the dev server. Also the
gateway's answer when Temporal goes away (503, not 500)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models import search_attributes as sa
from tests.stack import ROOT, product_stack
from tests.test_api_gateway import BACKOFFICE, MANAGER, case_payload

pytestmark = pytest.mark.devserver


@pytest.fixture(scope="module")
def stack(dev_env, tmp_path_factory):
    address = dev_env.client.service_client.config.target_host
    with product_stack(address, tmp_path_factory.mktemp("cli"), task_queue=f"cli-{uuid.uuid4().hex[:6]}") as s:
        yield s


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        cwd=ROOT,
        env={**stack.env, "COLUMNS": "220"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_status_pay_hold_resume_cancel_list(stack):
    contract = f"CLI-{uuid.uuid4().hex[:6].upper()}"
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        assert (await http.post("/v1/unpaid-cases", json=case_payload(contract), headers=BACKOFFICE)).status_code == 201

        async def stage():
            return (await http.get(f"/v1/unpaid-cases/{contract}", headers=MANAGER)).json()

        deadline = asyncio.get_running_loop().time() + 60
        while (await stage())["stage"] != "notice_sent":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.3)

    out = cli(stack, "status", contract)
    assert out.returncode == 0, out.stderr
    for expected in (
        f"Contract {contract}",
        "notice sent",
        "Balance 210.00 EUR",
        "Timeline (Paris time)",
        "opened",
        "formal_notice #1",
        "next",
        "suspension",
    ):
        assert expected in out.stdout, (expected, out.stdout)

    pay = ["pay", contract, "--amount", "10,50", "--payment-id", f"{contract}-CHQ1", "--method", "chèque"]
    first = cli(stack, *pay)
    assert first.returncode == 0 and "balance 199.50 EUR" in first.stdout, first.stdout + first.stderr
    again = cli(stack, *pay)  # same payment id: applied once, same answer
    assert again.returncode == 0 and "balance 199.50 EUR" in again.stdout
    bad = cli(stack, "pay", contract, "--amount", "-3", "--payment-id", "NEG")
    assert bad.returncode == 2 and "amount must be positive" in bad.stderr
    unknown = cli(stack, "status", "NOPE-404")
    assert unknown.returncode == 1 and "no recovery case for contract NOPE-404" in unknown.stderr

    assert cli(stack, "hold", contract, "--reason", "contestation du montant").returncode == 0
    listed = json.loads(
        await _until(stack, lambda: cli(stack, "list", "--stage", "on_hold", "--json"), lambda o: contract in o.stdout)
    )
    assert [i for i in listed if i["contract_id"] == contract][0]["stage"] == "on_hold"
    table = cli(stack, "list", "--stage", "on_hold")
    assert contract in table.stdout and "on_hold" in table.stdout
    assert cli(stack, "resume", contract).returncode == 0
    await _until(
        stack, lambda: cli(stack, "status", contract, "--json"), lambda o: '"stage": "notice_sent"' in o.stdout
    )
    not_held = cli(stack, "resume", contract)
    assert not_held.returncode == 1 and "not on hold" in not_held.stderr
    assert cli(stack, "cancel", contract, "--reason", "erreur de saisie").returncode == 0
    final = await _until(stack, lambda: cli(stack, "status", contract), lambda o: "cancelled" in o.stdout)
    assert "erreur de saisie" in final


async def _until(stack, run, ok, timeout=60.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        out = run()
        if ok(out):
            return out.stdout
        assert asyncio.get_running_loop().time() < deadline, out.stdout + out.stderr
        await asyncio.sleep(0.5)


async def test_temporal_down_gives_503_and_cli_exit_3(temporal_cli_path: str, tmp_path: Path):
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=temporal_cli_path, search_attributes=sa.ALL
    )
    address = env.client.service_client.config.target_host
    try:
        with product_stack(address, tmp_path, task_queue="down", worker=False) as stack:
            await env.shutdown()  # Temporal goes away under a running API
            env = None
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                r = await http.get("/v1/unpaid-cases/ANY-1", headers=MANAGER)
                assert r.status_code == 503, r.text
                assert "unavailable" in r.json()["detail"] and r.headers["retry-after"]
                r = await http.post("/v1/unpaid-cases", json=case_payload("ANY-2"), headers=BACKOFFICE)
                assert r.status_code == 503
                health = (await http.get("/healthz")).json()
                assert health["status"] == "degraded" and health["checks"]["temporal"].startswith("error")
            out = cli(stack, "status", "ANY-1")
            assert out.returncode == 3 and "Temporal unavailable" in out.stderr
    finally:
        if env is not None:
            await env.shutdown()
