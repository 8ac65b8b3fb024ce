"""Disputes over HTTP (FastAPI app, real worker, time-skipping server): open, read, act,
KPIs, and every error class (401/403/404/409/422, never a 500 for bad input)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest_asyncio

from models.settings import Settings
from starter.api.app import create_app
from tests.test_dispute_helpers import make_activities, register_search_attributes
from worker import build_worker

OPS = {"Authorization": "Bearer op-key"}
BO = {"Authorization": "Bearer bo-key"}
MGR = {"Authorization": "Bearer mgr-key"}


@pytest_asyncio.fixture
async def api(ts_env, tmp_path):
    await register_search_attributes(ts_env.client)
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        temporal_task_queue=f"api-disputes-{uuid.uuid4().hex[:8]}",
        api_keys="op-key:operator,bo-key:backoffice,mgr-key:manager",
    )
    acts, _engine = make_activities(tmp_path, settings.resolved_database_url)
    app = create_app(settings, temporal=ts_env.client)
    worker = build_worker(ts_env.client, settings, activities=acts.all())
    async with worker:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            http.settings = settings  # type: ignore[attr-defined]
            yield http, ts_env


def _body(dispute_id: str, **kw) -> dict:
    body = {
        "dispute_id": dispute_id,
        "member": {"name": "M. Paul Leroy", "email": "paul.leroy@example.org"},
        "contract_id": "CT-555",
        "received_at": "2026-12-18T09:30:00+01:00",
        "channel": "portal",
        "subject": "Hausse de cotisation injustifiée",
        "description": "Ma cotisation passe de 78 à 96 euros sans explication.",
    }
    body.update(kw)
    return body


async def test_open_read_act_and_kpis(api):
    http, env = api
    did = f"A-{uuid.uuid4().hex[:8]}"
    r = await http.post("/v1/disputes", json=_body(did), headers=BO)
    assert r.status_code == 201, r.text
    assert r.json()["workflow_id"] == f"dispute-{did}"

    r = await http.post("/v1/disputes", json=_body(did), headers=BO)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]

    r = await http.get(f"/v1/disputes/{did}", headers=MGR)
    assert r.status_code == 200
    st = r.json()
    assert st["clocks"][0]["last_day"] == "2026-12-31" and st["clocks"][1]["last_day"] == "2027-02-16"

    r = await http.post(f"/v1/disputes/{did}/acknowledge", headers=OPS)
    assert r.status_code == 200 and r.json()["stage"] == "acknowledged"
    r = await http.post(f"/v1/disputes/{did}/assign", json={"name": "Julie Martin"}, headers=OPS)
    assert r.json()["handler"]["name"] == "Julie Martin"
    r = await http.post(
        f"/v1/disputes/{did}/respond",
        json={"outcome": "partially_upheld", "text": "Geste commercial sur l'échéance de janvier.", "amount": "18.00"},
        headers=OPS,
    )
    assert r.status_code == 200 and r.json()["decision"]["amount"] == "18.00"
    r = await http.post(f"/v1/disputes/{did}/customer_reply", json={"accepts": True}, headers=BO)
    assert r.status_code == 200 and r.json()["stage"] == "closed"
    r = await http.post(f"/v1/disputes/{did}/satisfaction", json={"score": 4}, headers=BO)
    assert r.status_code == 200 and r.json()["satisfaction"]["score"] == 4

    # KPIs from the read model (written by the workflow's sync activity).
    for _ in range(100):
        r = await http.get("/v1/disputes/kpis", headers=MGR)
        assert r.status_code == 200
        kpis = {k["category"]: k for k in r.json()}
        if kpis.get("premiums", {}).get("mean_satisfaction"):
            break
        await asyncio.sleep(0.1)
    premiums = kpis["premiums"]  # triaged from the text: no category was given
    assert (premiums["disputes"], premiums["closed"], premiums["resolution_rate"]) == (1, 1, 1.0)
    assert premiums["mean_satisfaction"] == 4.0 and premiums["sla_breaches"] == 0
    assert (await http.get("/v1/disputes/kpis", headers=OPS)).status_code == 403

    # The workflow completed after the satisfaction score: still readable, no more messages.
    r = await http.get(f"/v1/disputes/{did}", headers=MGR)
    assert r.status_code == 200 and r.json()["satisfaction"]["score"] == 4
    r = await http.post(f"/v1/disputes/{did}/customer_message", json={"text": "Merci"}, headers=BO)
    assert r.status_code == 409 and "completed" in r.json()["detail"]


async def test_errors_are_json_with_field_and_reason(api):
    http, env = api
    did = f"E-{uuid.uuid4().hex[:8]}"
    # 401 / 403
    assert (await http.get(f"/v1/disputes/{did}")).status_code == 401
    assert (await http.get(f"/v1/disputes/{did}", headers={"Authorization": "Bearer nope"})).status_code == 401
    r = await http.post("/v1/disputes", json=_body(did), headers=MGR)
    assert r.status_code == 403 and "role 'manager'" in r.json()["detail"]
    # 422 on the input, with field and reason
    r = await http.post("/v1/disputes", json=_body(did, received_at="2026-12-18T09:30:00"), headers=BO)
    assert r.status_code == 422 and any(e["field"] == "received_at" for e in r.json()["errors"])
    r = await http.post("/v1/disputes", json=_body(did, category="weather"), headers=BO)
    assert r.status_code == 422 and any(e["field"] == "category" for e in r.json()["errors"])
    r = await http.post("/v1/disputes", content=b"{not json", headers={**BO, "Content-Type": "application/json"})
    assert r.status_code == 422
    # 404: unknown dispute, unknown action
    r = await http.get(f"/v1/disputes/{did}", headers=MGR)
    assert r.status_code == 404 and "unknown dispute" in r.json()["detail"]
    r = await http.post(f"/v1/disputes/{did}/acknowledge", headers=OPS)
    assert r.status_code == 404

    assert (await http.post("/v1/disputes", json=_body(did, category="reimbursement"), headers=BO)).status_code == 201
    r = await http.post(f"/v1/disputes/{did}/dance", headers=OPS)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "action"
    # 403: the member portal may not answer for the insurer
    r = await http.post(f"/v1/disputes/{did}/respond", json={"outcome": "upheld", "text": "ok"}, headers=BO)
    assert r.status_code == 403
    # 422: the message does not match its model
    r = await http.post(f"/v1/disputes/{did}/satisfaction", json={"score": 7}, headers=BO)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "score"
    r = await http.post(
        f"/v1/disputes/{did}/respond", json={"outcome": "rejected", "text": "Non", "amount": "10"}, headers=OPS
    )
    assert r.status_code == 422 and "rejection grants no amount" in r.json()["errors"][0]["reason"]
    r = await http.post(f"/v1/disputes/{did}/respond", json=[1, 2], headers=OPS)
    assert r.status_code == 422
    # 409: the workflow refuses the message in its current state, and says why
    r = await http.post(f"/v1/disputes/{did}/satisfaction", json={"score": 3}, headers=BO)
    assert r.status_code == 409 and "still open" in r.json()["detail"]
    r = await http.post(f"/v1/disputes/{did}/customer_reply", json={"accepts": False}, headers=BO)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "customer_reply"
    r = await http.post(f"/v1/disputes/{did}/close", json={"reason": "retrait du membre"}, headers=OPS)
    assert r.status_code == 200
    r = await http.post(f"/v1/disputes/{did}/close", headers=OPS)
    assert r.status_code == 409 and "closed" in r.json()["detail"]


async def test_demo_disputes_cover_every_stage(api):
    from starter.api.disputes import dispute_status
    from starter.cli_disputes import seed_demo_disputes

    http, env = api
    app_queue = http.settings.temporal_task_queue
    now = await env.get_current_time()
    ids = await seed_demo_disputes(env.client, app_queue, now, prefix=f"DM{uuid.uuid4().hex[:4]}")
    assert await seed_demo_disputes(env.client, app_queue, now, prefix=ids[0].rsplit("-", 1)[0]) == ids  # re-run
    for _ in range(100):  # triage runs as the first activity of DEMO-1
        if (await dispute_status(env.client, ids[0])).category_source == "triage":
            break
        await asyncio.sleep(0.1)
    statuses = {i: await dispute_status(env.client, i) for i in ids}
    stages = {i: s.stage.value for i, s in statuses.items()}
    assert sorted(set(stages.values())) == ["closed", "in_mediation", "in_progress", "received"]
    assert statuses[ids[0]].category.value == "premiums"  # triaged
    assert statuses[ids[2]].clocks[0].state.value == "breached"  # 20 days, never acknowledged
    assert statuses[ids[3]].clocks[1].state.value == "at_risk"  # 50 of 60 days
