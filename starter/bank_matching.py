"""Bank-statement matching: ISO 20022 camt.054 / camt.053 credits → recovery payments.

The letters print the contract id as the payment reference (``activities/letters/payment.py``:
the reference defaults to the contract id, and the EPC QR code carries it). A payer's bank
returns it in the notification either as free text (``RmtInf/Ustrd``, often among other
words: "COTISATION CONTRAT IARD-2026-0042 NOV") or as a structured creditor reference
(``RmtInf/Strd/CdtrRefInf/Ref``), possibly an ISO 11649 ``RF`` reference built from the
contract id. Each credit becomes a ``Payment`` whose ``payment_id`` is the bank's own
reference for the transaction, so importing the same statement twice never books twice.

Why a standard-library parser rather than a PyPI one
----------------------------------------------------
The maintained candidates were tried on a real camt.054 before writing this module:

- ``bankstatementparser`` 0.0.29 (2026-10): looks only for ``Stmt`` elements, so a
  camt.054 notification (``Ntfctn``) yields an empty table; it also merges ``Ustrd`` and
  structured references into one string and drops ``NtryRef``/``TxId``; it pulls pandas.
- ``camt053`` 0.0.23 (2026-10): reads ``Ntfctn``, but its ``TransactionDetails`` keeps
  neither the per-transaction amount and currency nor any remittance information
  (``RmtInf`` is not parsed at all), which is exactly what matching needs; it also pins
  jinja2/colorama and pulls xmlschema, cryptography and a FastAPI app.
- ``pycamt`` 1.1.1: camt.053/052 only (``Stmt``/``Rpt``); a camt.054 raises a parse error.

None of them reads camt.054 remittance data, so this module walks the ISO 20022 structure
itself (``Document / BkToCstmrDbtCdtNtfctn / Ntfctn / Ntry / NtryDtls / TxDtls`` for
camt.054, ``BkToCstmrStmt / Stmt`` for camt.053), namespace-agnostic so versions
001.02 to 001.13 read alike. ElementTree (expat) never fetches external entities and
expat ≥ 2.4 refuses entity-expansion bombs, so no DTD can reach the network or blow up
memory; DOCTYPEs are refused outright anyway (a bank file never carries one).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import IO

from temporalio.client import Client
from temporalio.service import RPCError

from models.payloads import Payment
from starter import cases

CONTAINERS = {
    "BkToCstmrDbtCdtNtfctn": ("camt.054", "Ntfctn"),
    "BkToCstmrStmt": ("camt.053", "Stmt"),
    "BkToCstmrAcctRpt": ("camt.052", "Rpt"),
}


class StatementError(ValueError):
    """The file is not a readable camt.052/053/054 document."""


@dataclass
class Credit:
    """One credit transaction of a statement (one ``TxDtls``, or the entry when it has none)."""

    payment_id: str  # the bank's reference: TxDtls/Refs/AcctSvcrRef, else the entry's
    amount: Decimal
    currency: str
    booked_on: date | None
    value_date: date | None
    debtor: str | None
    unstructured: list[str] = field(default_factory=list)  # RmtInf/Ustrd
    structured: list[str] = field(default_factory=list)  # RmtInf/Strd/CdtrRefInf/Ref
    end_to_end_id: str | None = None
    entry_ref: str | None = None
    reversal: bool = False
    status: str | None = None  # BOOK, PDNG, INFO

    @property
    def received_at(self) -> datetime:
        day = self.value_date or self.booked_on or datetime.now(timezone.utc).date()
        return datetime.combine(day, time(12, 0), tzinfo=timezone.utc)

    @property
    def remittance_text(self) -> str:
        return " | ".join([*self.structured, *self.unstructured])


@dataclass
class Statement:
    kind: str  # camt.054, camt.053
    version: str | None  # e.g. camt.054.001.08
    message_id: str | None
    account_iban: str | None
    credits: list[Credit]
    debits: int  # debit entries, ignored (outgoing money)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element | None, *path: str) -> str | None:
    found = _child(el, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _date(el: ET.Element | None) -> date | None:
    raw = _text(el, "Dt") or _text(el, "DtTm")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _amount(el: ET.Element | None) -> tuple[Decimal, str] | None:
    if el is None or not (el.text or "").strip():
        return None
    try:
        return Decimal(el.text.strip()), (el.get("Ccy") or "").upper()
    except InvalidOperation:
        return None


def _all_text(el: ET.Element | None, name: str) -> list[str]:
    if el is None:
        return []
    return [t.text.strip() for t in el.iter() if _local(t.tag) == name and t.text and t.text.strip()]


def parse_statement(source: bytes | str | IO[bytes]) -> Statement:
    """Read a camt.054 (or camt.053/052) document into its credits."""
    data = source if isinstance(source, (bytes, str)) else source.read()
    raw = data.encode() if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw[:4096].upper():
        raise StatementError("DOCTYPE declarations are not accepted in bank files")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise StatementError(f"not well-formed XML: {exc}") from exc
    if _local(root.tag) != "Document":
        raise StatementError(f"root element is <{_local(root.tag)}>, expected an ISO 20022 <Document>")
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    version = ns.rsplit(":", 1)[-1] if ns else None
    container = next((c for c in root if _local(c.tag) in CONTAINERS), None)
    if container is None:
        raise StatementError(
            "no camt.052/053/054 message in the document (expected BkToCstmrDbtCdtNtfctn or BkToCstmrStmt)"
        )
    kind, block_name = CONTAINERS[_local(container.tag)]
    credits: list[Credit] = []
    debits = 0
    iban = None
    for block in _children(container, block_name):
        iban = iban or _text(block, "Acct", "Id", "IBAN")
        for entry in _children(block, "Ntry"):
            indicator = _text(entry, "CdtDbtInd")
            if indicator != "CRDT":
                debits += 1
                continue
            credits.extend(_entry_credits(entry))
    return Statement(
        kind=kind,
        version=version,
        message_id=_text(container, "GrpHdr", "MsgId"),
        account_iban=iban,
        credits=credits,
        debits=debits,
    )


def _entry_credits(entry: ET.Element) -> Iterator[Credit]:
    entry_amount = _amount(_child(entry, "Amt"))
    entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
    booked, valued = _date(_child(entry, "BookgDt")), _date(_child(entry, "ValDt"))
    reversal = (_text(entry, "RvslInd") or "").lower() == "true"
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    details = [tx for dtls in _children(entry, "NtryDtls") for tx in _children(dtls, "TxDtls")]
    if not details:
        if entry_amount is None:
            return
        rmt = _child(entry, "RmtInf")
        yield Credit(
            payment_id=entry_ref or "",
            amount=entry_amount[0],
            currency=entry_amount[1],
            booked_on=booked,
            value_date=valued,
            debtor=None,
            unstructured=_all_text(rmt, "Ustrd"),
            structured=_structured_refs(rmt),
            entry_ref=entry_ref,
            reversal=reversal,
            status=status,
        )
        return
    for n, tx in enumerate(details, start=1):
        if (_text(tx, "CdtDbtInd") or "CRDT") != "CRDT":
            continue
        amount = (
            _amount(_child(tx, "Amt"))
            or _amount(_child(tx, "AmtDtls", "TxAmt", "Amt"))
            or (entry_amount if len(details) == 1 else None)
        )
        if amount is None:
            continue  # a batch detail without its own amount cannot be booked alone
        tx_ref = _text(tx, "Refs", "AcctSvcrRef") or _text(tx, "Refs", "TxId")
        if not tx_ref and entry_ref:
            tx_ref = entry_ref if len(details) == 1 else f"{entry_ref}/{n}"
        rmt = _child(tx, "RmtInf")
        yield Credit(
            payment_id=tx_ref or "",
            amount=amount[0],
            currency=amount[1],
            booked_on=booked,
            value_date=valued,
            debtor=_text(tx, "RltdPties", "Dbtr", "Nm") or _text(tx, "RltdPties", "Dbtr", "Pty", "Nm"),
            unstructured=_all_text(rmt, "Ustrd"),
            structured=_structured_refs(rmt),
            end_to_end_id=_text(tx, "Refs", "EndToEndId"),
            entry_ref=entry_ref,
            reversal=reversal,
            status=status,
        )


def _structured_refs(rmt: ET.Element | None) -> list[str]:
    refs = []
    for strd in _children(rmt, "Strd"):
        for cri in _children(strd, "CdtrRefInf"):
            ref = _text(cri, "Ref")
            if ref:
                refs.append(ref)
    return refs


# ---------------------------------------------------------------------- ISO 11649 (RF)


def _mod97(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s)) % 97


def is_rf_reference(ref: str) -> bool:
    """ISO 11649 structured creditor reference: ``RF`` + 2 check digits + 1–21 alphanumerics."""
    ref = ref.replace(" ", "").upper()
    if not (5 <= len(ref) <= 25 and ref.startswith("RF") and ref[2:4].isdigit() and ref[4:].isalnum()):
        return False
    return _mod97(ref[4:] + ref[:4]) == 1


def rf_reference(contract_id: str) -> str | None:
    """The RF reference of a contract (its alphanumeric characters), or None when too long."""
    body = "".join(c for c in contract_id.upper() if c.isalnum())
    if not 1 <= len(body) <= 21:
        return None
    check = 98 - _mod97(body + "RF00")
    return f"RF{check:02d}{body}"


def normalize(token: str) -> str:
    return "".join(c for c in token.upper() if c.isalnum())


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]|[A-Za-z0-9]")


def candidate_references(credit: Credit) -> list[str]:
    """Tokens that may be a contract id, most specific first, without duplicates.

    Structured references come first (an RF reference contributes its body); then each
    word of the free text, as written (``IARD-2026-0042``) — contract ids are
    ``[A-Za-z0-9._-]+``, so punctuation around a word is dropped.
    """
    seen: dict[str, None] = {}
    for ref in credit.structured:
        compact = ref.replace(" ", "")
        if is_rf_reference(compact):
            seen.setdefault(compact.upper()[4:], None)
        seen.setdefault(compact, None)
    for text in credit.unstructured:
        for m in _TOKEN.finditer(text):
            token = m.group(0)
            if is_rf_reference(token):
                seen.setdefault(token.upper()[4:], None)
            # contract ids carry digits: plain words ("COTISATION", "NOV") are not looked up
            if len(normalize(token)) >= 4 and any(c.isdigit() for c in token):
                seen.setdefault(token, None)
    return list(seen)


# ---------------------------------------------------------------------- matching and booking

OUTCOMES = (
    "booked",
    "booked_partial",
    "already_booked",
    "unmatched",
    "ambiguous",
    "not_matchable",
    "rejected",
    "failed",
)


@dataclass
class CreditResult:
    payment_id: str
    amount: str
    currency: str
    outcome: str
    contract_id: str | None = None
    reason: str | None = None
    remittance: str = ""
    debtor: str | None = None
    stage: str | None = None
    balance: str | None = None


async def match_credit(client: Client, credit: Credit, index_loader) -> list[str]:
    """Contracts the credit's references point to (exact ids first, then RF/alphanumeric forms)."""
    found: dict[str, None] = {}
    candidates = candidate_references(credit)[:12]
    for token in candidates:
        contract = await cases.find_contract(client, token)
        if contract:
            found.setdefault(contract, None)
    if not found:
        index = await index_loader()
        for token in candidates:
            for contract in sorted(index.get(normalize(token), ())):
                found.setdefault(contract, None)
    return list(found)


async def import_statement(client: Client, source: bytes | str, *, currency: str = "EUR", on_result=None) -> dict:
    """Parse a camt.054/053, book each matched credit once, report every credit."""
    statement = parse_statement(source)
    index_cache: dict[str, set[str]] | None = None

    async def index_loader() -> dict[str, set[str]]:
        nonlocal index_cache
        if index_cache is None:
            index_cache = await cases.contract_index(client)
        return index_cache

    results: list[CreditResult] = []
    for credit in statement.credits:
        res = CreditResult(
            payment_id=credit.payment_id,
            amount=str(credit.amount),
            currency=credit.currency,
            outcome="unmatched",
            remittance=credit.remittance_text,
            debtor=credit.debtor,
        )
        if not credit.payment_id:
            res.outcome, res.reason = "rejected", "no bank reference (AcctSvcrRef/NtryRef): cannot book idempotently"
        elif credit.currency != currency:
            res.outcome = "not_matchable"
            res.reason = f"credit in {credit.currency or '?'}; recovery cases are booked in {currency}: handle manually"
        elif credit.reversal:
            res.outcome, res.reason = "not_matchable", "reversal entry (RvslInd): not a payment"
        elif credit.status and credit.status not in ("BOOK",):
            res.outcome, res.reason = "not_matchable", f"entry status {credit.status}: only booked credits are applied"
        elif credit.amount <= 0:
            res.outcome, res.reason = "rejected", f"non-positive amount {credit.amount}"
        else:
            try:
                contracts = await match_credit(client, credit, index_loader)
                if not contracts:
                    res.reason = "no contract reference found in the remittance information"
                elif len(contracts) > 1:
                    res.outcome = "ambiguous"
                    res.reason = f"references several contracts ({', '.join(contracts)}): not booked, allocate manually"
                else:
                    res.contract_id = contracts[0]
                    payment = Payment(
                        payment_id=credit.payment_id,
                        amount=credit.amount,
                        currency=credit.currency,
                        received_at=credit.received_at,
                        method="virement",
                        reference=(credit.remittance_text or None) and credit.remittance_text[:140],
                    )
                    status, applied = await cases.register_payment_once(client, res.contract_id, payment)
                    res.stage, res.balance = status.stage.value, str(status.balance)
                    if not applied:
                        res.outcome, res.reason = "already_booked", "this bank reference was applied before"
                    else:
                        res.outcome = "booked" if status.balance <= 0 else "booked_partial"
                        if status.balance > 0:
                            res.reason = f"partial payment: balance {status.balance} {status.currency} still due"
            except cases.CaseError as err:
                res.outcome = "rejected" if err.status in (404, 409, 422) else "failed"
                res.reason = err.message
            except RPCError as err:  # Temporal unreachable: reported; re-importing later is safe
                res.outcome, res.reason = "failed", f"Temporal error ({err.status.name}): {err.message}"
        results.append(res)
        if on_result is not None:
            on_result(res)
    counts = {k: sum(1 for r in results if r.outcome == k) for k in OUTCOMES}
    return {
        "kind": statement.kind,
        "version": statement.version,
        "message_id": statement.message_id,
        "account_iban": statement.account_iban,
        "credits": len(results),
        "debits_ignored": statement.debits,
        "counts": counts,
        "lines": [asdict(r) for r in results],
    }
