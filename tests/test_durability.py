"""Kill the worker (SIGKILL) while cases are sending their notices: no case is lost and no
registered letter is sent twice. Real dev server, real ``python worker.py``, real
simulator and API processes."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.stack import poll, product_stack
from tests.test_e2e_devserver import BACKOFFICE, case_payload

pytestmark = pytest.mark.devserver


async def test_sigkill_worker_during_sends_loses_nothing_and_sends_once(dev_env, tmp_path: Path):
    client = dev_env.client
    address = client.service_client.config.target_host
    with product_stack(address, tmp_path, task_queue=f"kill-{uuid.uuid4().hex[:6]}") as stack:
        tag = uuid.uuid4().hex[:5]
        contracts = [f"K{tag}-{i}" for i in range(6)]
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            for c in contracts:
                r = await http.post("/v1/unpaid-cases", json=case_payload(c, f"{c.lower()}@example.org"), headers=BACKOFFICE)
                assert r.status_code == 201, r.text
        # kill the worker several times while it renders and sends, then let a fresh one finish
        for delay in (1.5, 2.5, 1.0):
            time.sleep(delay)
            stack.kill("worker")
            stack.start_worker()

        async def statuses():
            return [await client.get_workflow_handle(f"unpaid-{c}").query("status") for c in contracts]

        def all_noticed(sts):
            return all(any(lt["kind"] == "formal_notice" and lt["status"] in ("deposited", "accepted") for lt in s["letters"])
                       for s in sts)

        sts = await poll(statuses, all_noticed, timeout=120)
        for s in sts:
            assert s["stage"] == "notice_sent"
            assert [lt["kind"] for lt in s["letters"]].count("formal_notice") == 1
        async with httpx.AsyncClient(base_url=stack.sim_url, timeout=30,
                                     headers={"Authorization": "Bearer dev-lre-token"}) as sim:
            mails = (await sim.get("/api/_admin/mails")).json()
        ours = [m for m in mails if m["ref_dossier"] in contracts]
        per_letter = Counter(m["ref_client"] for m in ours)
        assert per_letter and max(per_letter.values()) == 1, per_letter  # never twice at the provider
        notices = Counter(m["ref_dossier"] for m in ours if ".formal_notice." in m["ref_client"])
        assert notices == Counter({c: 1 for c in contracts})
