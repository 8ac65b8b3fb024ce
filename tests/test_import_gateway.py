"""Bulk import through real HTTP and the real CLI against the API, ``python worker.py`` and
the dev server: per-line report, rejected lines with field and reason, an import killed
midway and re-run without a duplicate case, a settled case not reopened by a re-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from models import calendar as cal
from tests.stack import ROOT, product_stack

pytestmark = pytest.mark.devserver

BACKOFFICE = {"Authorization": "Bearer dev-backoffice-key"}
MANAGER = {"Authorization": "Bearer dev-manager-key"}
SAMPLES = ROOT / "data" / "samples"
HEADER = SAMPLES.joinpath("unpaid-cases.csv").read_text(encoding="utf-8").splitlines()[0]


@pytest.fixture(scope="module")
def stack(dev_env, tmp_path_factory):
    address = dev_env.client.service_client.config.target_host
    with product_stack(address, tmp_path_factory.mktemp("import"), task_queue=f"imp-{uuid.uuid4().hex[:6]}") as s:
        yield s


@pytest_asyncio.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as client:
        yield client


def prefixed(text: str, prefix: str) -> str:
    return text.replace("SMP-", f"{prefix}-")


def csv_line(contract: str, *, due: str | None = None, amount: str = "120.00", **cols: str) -> str:
    due = due or (cal.paris_date(datetime.now(timezone.utc)) - timedelta(days=15)).isoformat()
    row = {
        "contract_id": contract,
        "regime": "iard",
        "portfolio": "default",
        "name": "Paul Girard",
        "email": "paul.girard@example.org",
        "lre_consent": "true",
        "is_professional": "false",
        "address_line1": "1 rue Haute",
        "address_line2": "",
        "postal_code": "75001",
        "city": "Paris",
        "country": "FR",
        "due_date": due,
        "amount": amount,
        "installments": "",
        "period_premium": "1440.00",
        "paid_on_period": "0",
        "currency": "EUR",
        "compulsory_membership": "false",
        "has_surrender_value": "false",
    }
    row.update(cols)
    return ",".join(row[c] for c in HEADER.split(","))


async def test_csv_and_jsonl_samples_import_then_rerun_reports_already_open(http, dev_env):
    prefix = f"T{uuid.uuid4().hex[:5].upper()}"
    body = prefixed(SAMPLES.joinpath("unpaid-cases.csv").read_text(encoding="utf-8"), prefix)
    r = await http.post(
        "/v1/unpaid-cases/import", content=body.encode(), headers={**BACKOFFICE, "content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["counts"]["opened"] == 6 and report["total"] == 6, report
    assert [line["line"] for line in report["lines"]] == [2, 3, 4, 5, 6, 7]
    runs = {}
    for line in report["lines"]:
        desc = await dev_env.client.get_workflow_handle(f"unpaid-{line['contract_id']}").describe()
        runs[line["contract_id"]] = desc.run_id
    # the instalments column becomes two instalments
    r = await http.get(f"/v1/unpaid-cases/{prefix}-MUT-0004", headers=MANAGER)
    assert r.json()["amount_due"] in ("128.00", "128")

    again = (
        await http.post(
            "/v1/unpaid-cases/import", content=body.encode(), headers={**BACKOFFICE, "content-type": "text/csv"}
        )
    ).json()
    assert again["counts"]["already_open"] == 6 and again["counts"]["opened"] == 0, again
    for line in again["lines"]:
        desc = await dev_env.client.get_workflow_handle(f"unpaid-{line['contract_id']}").describe()
        assert desc.run_id == runs[line["contract_id"]]  # no second run

    jsonl = prefixed(SAMPLES.joinpath("unpaid-cases.jsonl").read_text(encoding="utf-8"), prefix)
    r = await http.post(
        "/v1/unpaid-cases/import",
        content=jsonl.encode(),
        headers={**BACKOFFICE, "content-type": "application/x-ndjson"},
    )
    assert r.json()["counts"]["opened"] == 3, r.json()
    # the collective case's letters go to the employer, who has the address
    st = (await http.get(f"/v1/unpaid-cases/{prefix}-COLL-0103", headers=MANAGER)).json()
    assert st["regime"] == "mutuelle_collective"


async def test_rejected_lines_carry_field_and_reason_and_open_nothing(http):
    p = f"R{uuid.uuid4().hex[:5].upper()}"
    future = (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()
    lines = [
        HEADER,
        csv_line(f"{p}-OK"),
        csv_line(f"{p}-REG", regime="auto"),
        csv_line(f"{p}-ZERO", amount="0"),
        csv_line(f"{p}-NOADDR", email="", address_line1="", postal_code="", city=""),
        csv_line(f"{p}-BOOL", lre_consent="peut-être"),
        csv_line(f"{p}-INST", installments="2026-10-01:12", due_date="", amount=""),
        csv_line(f"{p}-FUT", due=future),
        csv_line(f"{p}-CUR", currency="XXY"),
        csv_line(f"{p}-DATE", due="2026-02-30"),
        csv_line(f"{p}-OK") + ",extra",
    ]
    r = await http.post(
        "/v1/unpaid-cases/import", content="\n".join(lines).encode(), headers={**BACKOFFICE, "content-type": "text/csv"}
    )
    assert r.status_code == 200
    by_line = {line["line"]: line for line in r.json()["lines"]}
    assert by_line[2]["outcome"] == "opened"
    expected_fields = {
        3: "regime",
        4: "installments.0.amount",
        5: "policyholder.address",
        6: "lre_consent",
        7: "installments",
        8: "installments.0.due_date",
        9: "currency",
        10: "installments.0.due_date",
        11: None,
    }
    for n, field in expected_fields.items():
        assert by_line[n]["outcome"] == "rejected", by_line[n]
        assert by_line[n]["field"] == field and by_line[n]["reason"], by_line[n]
        assert by_line[n]["contract_id"], by_line[n]
    for n in range(3, 11):
        cid = by_line[n]["contract_id"]
        assert (await http.get(f"/v1/unpaid-cases/{cid}", headers=MANAGER)).status_code == 404

    bad_jsonl = b'{"contract_id": "X"\n[1, 2]\n'
    r = await http.post(
        "/v1/unpaid-cases/import", content=bad_jsonl, headers={**BACKOFFICE, "content-type": "application/x-ndjson"}
    )
    lines_ = r.json()["lines"]
    assert [line["outcome"] for line in lines_] == ["rejected", "rejected"]
    assert "not valid JSON" in lines_[0]["reason"] and "JSON object" in lines_[1]["reason"]


async def test_settled_case_is_not_reopened_by_a_rerun_but_a_new_unpaid_is(http, dev_env):
    contract = f"S{uuid.uuid4().hex[:6].upper()}"
    body = f"{HEADER}\n{csv_line(contract, amount='80.00')}\n".encode()
    hdr = {**BACKOFFICE, "content-type": "text/csv"}
    assert (await http.post("/v1/unpaid-cases/import", content=body, headers=hdr)).json()["counts"]["opened"] == 1
    r = await http.post(
        f"/v1/unpaid-cases/{contract}/payments",
        headers=BACKOFFICE,
        json={"payment_id": f"{contract}-PAY", "amount": "80.00", "currency": "EUR"},
    )
    assert r.json()["stage"] == "regularized"
    handle = dev_env.client.get_workflow_handle(f"unpaid-{contract}")
    await handle.result()
    again = (await http.post("/v1/unpaid-cases/import", content=body, headers=hdr)).json()
    assert again["lines"][0]["outcome"] == "already_closed", again
    assert "regularized" in again["lines"][0]["reason"]
    # next month's unpaid for the same contract is a new case (new run of the same id)
    later = (cal.paris_date(datetime.now(timezone.utc)) - timedelta(days=2)).isoformat()
    new = (
        await http.post(
            "/v1/unpaid-cases/import", content=f"{HEADER}\n{csv_line(contract, due=later)}\n".encode(), headers=hdr
        )
    ).json()
    assert new["lines"][0]["outcome"] == "opened", new
    runs = [wf async for wf in dev_env.client.list_workflows(f"WorkflowId = 'unpaid-{contract}'")]
    assert len(runs) == 2


async def test_cli_import_killed_midway_then_rerun_opens_each_case_once(stack, dev_env, tmp_path: Path):
    prefix = f"K{uuid.uuid4().hex[:5].upper()}"
    n = 400
    path = tmp_path / "batch.csv"
    path.write_text("\n".join([HEADER, *(csv_line(f"{prefix}-{i:04d}") for i in range(n))]) + "\n", encoding="utf-8")
    client = dev_env.client
    cmd = [sys.executable, "-m", "starter.cli", "import", str(path), "--concurrency", "1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    contracts_query = (
        f"WorkflowType = 'UnpaidPremiumWorkflow' AND ContractId >= '{prefix}-' AND ContractId < '{prefix}.'"
    )

    async def exists(i: int) -> bool:
        try:
            await client.get_workflow_handle(f"unpaid-{prefix}-{i:04d}").describe()
            return True
        except Exception:
            return False

    deadline = asyncio.get_running_loop().time() + 90
    while not await exists(5):  # concurrency 1 follows the file order: 6 cases are open
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the operator's laptop dies mid-import
    proc.wait(timeout=10)
    await asyncio.sleep(1)
    before = (await client.count_workflows(contracts_query)).count
    assert 6 <= before < n, before

    report_path = tmp_path / "report.json"
    rerun = subprocess.run(
        [*cmd[:-2], "--concurrency", "16", "--report", str(report_path)],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = json.loads(report_path.read_text())
    counts = report["counts"]
    assert counts["opened"] + counts["already_open"] == n and counts["rejected"] == counts["failed"] == 0, counts
    assert counts["already_open"] == before and counts["opened"] == n - before, (counts, before)
    assert "opened" in rerun.stdout and "already_open" in rerun.stdout
    # each contract has exactly one run: nothing was started twice
    for i in range(0, n, 37):
        runs = [wf async for wf in client.list_workflows(f"WorkflowId = 'unpaid-{prefix}-{i:04d}'")]
        assert len(runs) == 1, (i, runs)
    assert (await client.count_workflows(contracts_query)).count == n
