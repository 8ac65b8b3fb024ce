"""Bank-statement matching: the camt.054 parser on the project's and a foreign sample, then
the whole path (API endpoint and CLI) against the API, ``python worker.py`` and the dev
server: matched, partially paid, batch, RF reference, truncated reference, ambiguous,
non-EUR; re-importing the statement books nothing twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, create_engine, select

from models.tables import PaymentRecord
from starter.bank_matching import (
    StatementError,
    candidate_references,
    is_rf_reference,
    parse_statement,
    rf_reference,
)
from tests.stack import ROOT, product_stack

SAMPLE = ROOT / "data" / "samples" / "camt054-001.08-recouvrement.xml"
CHF = ROOT.parent / "shared" / "data" / "bank-statements" / "ch-qrr-camt054.001.04.xml"
if not CHF.exists():  # CI clones the repo with shared/ beside it
    CHF = Path("/work/shared/data/bank-statements/ch-qrr-camt054.001.04.xml")
BACKOFFICE = {"Authorization": "Bearer dev-backoffice-key"}
MANAGER = {"Authorization": "Bearer dev-manager-key"}


# ----------------------------------------------------------------------------- parser (pure)


def test_parser_reads_the_project_sample():
    st = parse_statement(SAMPLE.read_bytes())
    assert (st.kind, st.version, st.message_id) == ("camt.054", "camt.054.001.08", "CAMT054-20261120-0001")
    assert st.account_iban == "FR7630006000011234567890189" and st.debits == 1
    by_id = {c.payment_id: c for c in st.credits}
    assert list(by_id) == [
        "SMP2026111900001",
        "SMP2026111900002",
        "SMP2026111900003",
        "SMP2026111900004-01",
        "SMP2026111900004-02",
        "SMP2026111900005",
        "SMP2026111900006",
    ]
    first = by_id["SMP2026111900001"]
    assert first.amount == Decimal("210.00") and first.currency == "EUR" and first.debtor == "VIDAL JEANNE"
    assert first.unstructured == ["COTISATION CONTRAT SMP-IARD-0001 ECHEANCE OCT."]
    assert first.end_to_end_id == "VIR-JV-20261118" and str(first.value_date) == "2026-11-19"
    assert "SMP-IARD-0001" in candidate_references(first)
    assert "COTISATION" not in candidate_references(first)  # words without digits are not looked up
    rf = by_id["SMP2026111900003"]
    assert rf.structured == ["RF66SMPVIE0003"] and candidate_references(rf)[0] == "SMPVIE0003"
    # batch: each transaction detail with its own amount and bank reference
    assert by_id["SMP2026111900004-01"].amount == Decimal("64.00")
    assert by_id["SMP2026111900004-02"].amount == Decimal("150.00")


def test_parser_reads_the_foreign_chf_sample():
    st = parse_statement(CHF.read_bytes())
    assert st.kind == "camt.054" and st.version == "camt.054.001.04"
    assert [(c.payment_id, c.amount, c.currency) for c in st.credits] == [
        ("A000000000000001", Decimal("42"), "CHF"),
        ("A000000000000002", Decimal("142"), "CHF"),
    ]
    assert st.credits[0].structured == ["000000000000000000000000001"]


@pytest.mark.parametrize(
    "ref,ok",
    [
        ("RF18539007547034", True),
        ("RF18 5390 0754 7034", True),
        ("RF19539007547034", False),
        ("RF66SMPVIE0003", True),
        ("SMPVIE0003", False),
    ],
)
def test_iso_11649(ref, ok):
    assert is_rf_reference(ref) is ok


def test_rf_reference_round_trip():
    assert rf_reference("SMP-VIE-0003") == "RF66SMPVIE0003"
    assert rf_reference("539007547034") == "RF18539007547034"  # the ISO 11649 example
    assert rf_reference("X" * 30) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<Document",
        b"<html/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Document/>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn/></Document>',
    ],
)
def test_unreadable_files_are_refused(raw):
    with pytest.raises(StatementError):
        parse_statement(raw)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def stack(dev_env, tmp_path_factory):
    address = dev_env.client.service_client.config.target_host
    with product_stack(address, tmp_path_factory.mktemp("bank"), task_queue=f"bank-{uuid.uuid4().hex[:6]}") as s:
        yield s


@pytest_asyncio.fixture
async def http(stack):
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as client:
        yield client


@pytest.mark.devserver
async def test_statement_import_books_matched_credits_once_and_reports_the_rest(http, stack, dev_env):
    # the sample contracts (data/samples/unpaid-cases.csv) are open
    csv = (ROOT / "data" / "samples" / "unpaid-cases.csv").read_bytes()
    r = await http.post("/v1/unpaid-cases/import", content=csv, headers={**BACKOFFICE, "content-type": "text/csv"})
    assert r.json()["counts"]["opened"] + r.json()["counts"]["already_open"] == 6, r.json()

    r = await http.post(
        "/v1/payments/import", content=SAMPLE.read_bytes(), headers={**BACKOFFICE, "content-type": "application/xml"}
    )
    assert r.status_code == 200, r.text
    report = r.json()
    lines = {line["payment_id"]: line for line in report["lines"]}
    assert report["kind"] == "camt.054" and report["credits"] == 7 and report["debits_ignored"] == 1
    outcome = {k: (v["outcome"], v["contract_id"]) for k, v in lines.items()}
    assert outcome == {
        "SMP2026111900001": ("booked", "SMP-IARD-0001"),  # Ustrd among other words, full amount
        "SMP2026111900002": ("booked_partial", "SMP-IARD-0002"),  # lower case in the free text, partial
        "SMP2026111900003": ("booked", "SMP-VIE-0003"),  # structured RF reference
        "SMP2026111900004-01": ("booked_partial", "SMP-MUT-0004"),  # batch, matched detail
        "SMP2026111900004-02": ("unmatched", None),  # batch, an invoice of someone else
        "SMP2026111900005": ("unmatched", None),  # truncated reference: never guessed
        "SMP2026111900006": ("ambiguous", None),  # names two contracts
    }
    assert lines["SMP2026111900002"]["balance"] in ("130.00", "130") and "130" in lines["SMP2026111900002"]["reason"]
    assert lines["SMP2026111900001"]["stage"] == "regularized"
    assert (
        "SMP-PREV-0006" in lines["SMP2026111900006"]["reason"]
        and "SMP-IARD-0005" in lines["SMP2026111900006"]["reason"]
    )
    assert "SMP-IARD-000" in lines["SMP2026111900005"]["remittance"]
    st = (await http.get("/v1/unpaid-cases/SMP-IARD-0002", headers=MANAGER)).json()
    assert st["payment_ids"] == ["SMP2026111900002"] and st["balance"] in ("130.00", "130")
    # the ambiguous credit touched neither case
    for cid in ("SMP-PREV-0006", "SMP-IARD-0005"):
        assert (await http.get(f"/v1/unpaid-cases/{cid}", headers=MANAGER)).json()["payment_ids"] == []

    # the same statement again (the bank re-sends it, or the operator re-imports): nothing booked twice
    again = (
        await http.post(
            "/v1/payments/import",
            content=SAMPLE.read_bytes(),
            headers={**BACKOFFICE, "content-type": "application/xml"},
        )
    ).json()
    again_outcomes = {line["payment_id"]: line["outcome"] for line in again["lines"]}
    for ref in ("SMP2026111900001", "SMP2026111900002", "SMP2026111900003", "SMP2026111900004-01"):
        assert again_outcomes[ref] == "already_booked", again
    st = (await http.get("/v1/unpaid-cases/SMP-IARD-0002", headers=MANAGER)).json()
    assert st["payment_ids"] == ["SMP2026111900002"] and st["balance"] in ("130.00", "130")
    engine = create_engine(stack.env["DATABASE_URL"])
    deadline = asyncio.get_running_loop().time() + 90
    while True:  # the worker writes the ledger right after the update (activity)
        with Session(engine) as db:
            rows = db.exec(select(PaymentRecord).where(PaymentRecord.payment_id.like("SMP20261119%"))).all()
        if len(rows) >= 4 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    if len(rows) < 4:
        for cid in ("SMP-IARD-0001", "SMP-VIE-0003"):
            print(cid, (await http.get(f"/v1/unpaid-cases/{cid}", headers=MANAGER)).json())
        h = dev_env.client.get_workflow_handle("unpaid-SMP-IARD-0001")
        print("DESC", (await h.describe()).status)
        async for e in h.fetch_history_events():
            print(
                "EV",
                e.event_id,
                e.event_type,
                str(e)[:600].replace("\n", " ") if e.event_type in (10, 12, 13, 8) else "",
            )
        import re

        print(
            "\n".join(
                line
                for line in (stack.data_dir / "worker.log").read_text().splitlines()
                if re.search("SMP-IARD-0001|Traceback|Error", line)
            )[-4000:]
        )
    assert sorted(r.payment_id for r in rows) == [
        "SMP2026111900001",
        "SMP2026111900002",
        "SMP2026111900003",
        "SMP2026111900004-01",
    ]

    # the foreign CHF notification: reported as not matchable, nothing booked
    chf = (
        await http.post(
            "/v1/payments/import", content=CHF.read_bytes(), headers={**BACKOFFICE, "content-type": "application/xml"}
        )
    ).json()
    assert [line["outcome"] for line in chf["lines"]] == ["not_matchable", "not_matchable"]
    assert "CHF" in chf["lines"][0]["reason"] and chf["counts"]["booked"] == 0

    # the CLI reads the same file with the same answers
    out = subprocess.run(
        [sys.executable, "-m", "starter.cli", "payments", "import", str(SAMPLE), "--json"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert {line["payment_id"]: line["outcome"] for line in cli["lines"]} == again_outcomes
    table = subprocess.run(
        [sys.executable, "-m", "starter.cli", "payments", "import", str(CHF)],
        cwd=ROOT,
        env={**stack.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert table.returncode == 0 and "not_matchable" in table.stdout and "not_matchable: 2" in table.stdout


@pytest.mark.devserver
async def test_camt053_statement_books_through_the_api(http):
    jsonl = (ROOT / "data" / "samples" / "unpaid-cases.jsonl").read_bytes()
    r = await http.post(
        "/v1/unpaid-cases/import", content=jsonl, headers={**BACKOFFICE, "content-type": "application/x-ndjson"}
    )
    assert r.json()["counts"]["rejected"] == 0, r.json()
    report = (
        await http.post(
            "/v1/payments/import", content=CAMT053, headers={**BACKOFFICE, "content-type": "application/xml"}
        )
    ).json()
    assert report["kind"] == "camt.053"
    assert [(line["outcome"], line["contract_id"]) for line in report["lines"]] == [
        ("booked", "SMP-MUT-0102"),
        ("not_matchable", None),  # a reversal is not a payment
    ]


@pytest.mark.devserver
async def test_bad_statement_bodies_are_422(http):
    for body in (b"", b"not xml at all", b"<Document xmlns='urn:x'><Foo/></Document>"):
        r = await http.post(
            "/v1/payments/import", content=body, headers={**BACKOFFICE, "content-type": "application/xml"}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == "body"


CAMT053 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-20261120</MsgId><CreDtTm>2026-11-20T06:00:00+01:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>STMT-20261120-1</Id>
   <Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>EUR</Ccy></Acct>
   <Ntry>
    <Amt Ccy="EUR">58.20</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>2026-11-19</Dt></BookgDt><ValDt><Dt>2026-11-19</Dt></ValDt>
    <AcctSvcrRef>STMT-REF-1</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs>
     <RmtInf><Ustrd>MOREAU HENRI</Ustrd><Ustrd>CONTRAT SMP-MUT-0102</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="EUR">40.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd><Sts>BOOK</Sts>
    <AcctSvcrRef>STMT-REF-2</AcctSvcrRef>
    <NtryDtls><TxDtls><RmtInf><Ustrd>RETOUR SMP-IARD-0101</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>"""


def test_parser_reads_camt053_statements_too():
    st = parse_statement(CAMT053)
    assert (st.kind, st.version, st.message_id) == ("camt.053", "camt.053.001.02", "STMT-20261120")
    first, reversal = st.credits
    # a single transaction detail without its own reference takes the entry's
    assert first.payment_id == "STMT-REF-1" and first.amount == Decimal("58.20") and first.status == "BOOK"
    assert first.unstructured == ["MOREAU HENRI", "CONTRAT SMP-MUT-0102"]
    assert "SMP-MUT-0102" in candidate_references(first)
    assert reversal.reversal is True
