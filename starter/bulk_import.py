"""Bulk import of unpaid contracts (CSV or JSON lines), shared by the API and the CLI.

Streamed (one record in memory per in-flight start), bounded concurrency, one report line
per input line: ``opened``, ``already_open``, ``already_closed`` (imported before and
settled since: not reopened), ``rejected`` (invalid line, with field and reason) or
``failed`` (Temporal could not be reached for that line: re-run the file later).

Safe to re-run after an interruption: the workflow id is ``unpaid-{contract_id}``, so a line
already started answers ``already_open`` and never opens a second case.

CSV columns (header row required, ``,`` or ``;`` separated, UTF-8, one record per line):

=====================  ==========================================================  ========
column                 meaning                                                     required
=====================  ==========================================================  ========
contract_id            contract reference, ``[A-Za-z0-9._-]{1,64}``                yes
regime                 iard | mutuelle_individuelle | mutuelle_collective |        yes
                       prevoyance_collective | vie
portfolio              recovery policy portfolio (default ``default``)             no
name                   policyholder name                                           yes
email                  policyholder e-mail                                         *
lre_consent            true/false: consent to registered e-mail (LRE)              no
is_professional        true/false                                                  no
address_line1          postal address                                              *
address_line2          second address line                                         no
postal_code, city      postal address                                              *
country                ISO country code (default FR)                               no
due_date, amount       the unpaid instalment (ISO date, decimal with ``.``)        **
installments           several instalments: ``2026-10-01=120.00|2026-11-01=120.00``  **
period_premium         premium of the analysed period                              yes
paid_on_period         already paid on the period (0 = total unpaid)               no
currency               ISO 4217 (default EUR)                                      no
compulsory_membership  true/false (branch agreement: no suspension/termination)    no
has_surrender_value    true/false (life: reduction instead of termination)         no
=====================  ==========================================================  ========

\\* an e-mail or a full postal address (line1, postal_code, city) is required.
\\** either ``due_date`` + ``amount`` or ``installments``.

JSON lines: one ``UnpaidCase`` object per line (the ``POST /v1/unpaid-cases`` body).
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from models.payloads import UnpaidCase
from starter import cases

OUTCOMES = ("opened", "already_open", "already_closed", "rejected", "failed")
_TRUE = {"1", "true", "yes", "oui", "y", "o", "vrai"}
_FALSE = {"", "0", "false", "no", "non", "n", "faux"}


@dataclass
class LineResult:
    line: int
    outcome: str
    contract_id: str | None = None
    field: str | None = None
    reason: str | None = None


@dataclass
class ImportReport:
    lines: list[LineResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.outcome for r in self.lines)
        return {k: c.get(k, 0) for k in OUTCOMES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": len(self.lines),
            "counts": self.counts,
            "lines": [asdict(r) for r in sorted(self.lines, key=lambda r: r.line)],
        }


class RecordError(ValueError):
    def __init__(self, field: str | None, reason: str, contract_id: str | None = None):
        super().__init__(reason)
        self.field, self.reason, self.contract_id = field, reason, contract_id


def detect_format(name: str | None, first_line: str) -> str:
    if name:
        lower = name.lower()
        if lower.endswith((".jsonl", ".ndjson", ".json")):
            return "jsonl"
        if lower.endswith(".csv"):
            return "csv"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def _bool(value: str | None, column: str) -> bool:
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise RecordError(column, f"{value!r} is not a boolean (true/false)")


def csv_row_to_payload(row: dict[str, str]) -> dict[str, Any]:
    get = lambda k: (row.get(k) or "").strip() or None  # noqa: E731
    installments: list[dict[str, str]] = []
    if get("installments"):
        for part in get("installments").split("|"):  # type: ignore[union-attr]
            due, sep, amount = part.strip().partition("=")
            if not sep:
                raise RecordError("installments", f"{part!r}: expected DATE=AMOUNT, e.g. 2026-10-01=120.00")
            installments.append({"due_date": due.strip(), "amount": amount.strip()})
    elif get("due_date") or get("amount"):
        installments.append({"due_date": get("due_date"), "amount": get("amount")})  # type: ignore[dict-item]
    address = None
    if any(get(k) for k in ("address_line1", "postal_code", "city")):
        address = {
            "line1": get("address_line1"),
            "line2": get("address_line2"),
            "postal_code": get("postal_code"),
            "city": get("city"),
            "country": get("country") or "FR",
        }
    payload: dict[str, Any] = {
        "contract_id": get("contract_id"),
        "regime": get("regime"),
        "portfolio": get("portfolio") or "default",
        "policyholder": {
            "name": get("name"),
            "email": get("email"),
            "lre_consent": _bool(row.get("lre_consent"), "lre_consent"),
            "is_professional": _bool(row.get("is_professional"), "is_professional"),
            "address": address,
        },
        "installments": installments,
        "period_premium": get("period_premium"),
        "paid_on_period": get("paid_on_period") or "0",
        "currency": get("currency") or "EUR",
        "compulsory_membership": _bool(row.get("compulsory_membership"), "compulsory_membership"),
        "has_surrender_value": _bool(row.get("has_surrender_value"), "has_surrender_value"),
    }
    return payload


def to_case(payload: Any) -> UnpaidCase:
    contract_id = payload.get("contract_id") if isinstance(payload, dict) else None
    if not isinstance(payload, dict):
        raise RecordError(None, "each line must be a JSON object")
    try:
        return UnpaidCase.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise RecordError(loc or None, f"{err.get('msg', 'invalid')}{more}", contract_id) from exc


async def _aiter(lines: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(lines, AsyncIterable):
        async for line in lines:
            yield line
    else:
        for line in lines:
            yield line


async def parse_records(
    lines: Iterable[str] | AsyncIterable[str], name: str | None = None
) -> AsyncIterator[tuple[int, UnpaidCase | RecordError]]:
    """(line number, case or error) for each record; line numbers are the file's (header = 1)."""
    fmt: str | None = None
    header: list[str] | None = None
    delimiter = ","
    n = 0
    async for raw in _aiter(lines):
        n += 1
        line = raw.rstrip("\r\n")
        if n == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        if fmt is None:
            fmt = detect_format(name, line)
            if fmt == "csv":
                delimiter = ";" if line.count(";") > line.count(",") else ","
                header = [h.strip().lower() for h in next(csv.reader([line], delimiter=delimiter))]
                if "contract_id" not in header:
                    yield n, RecordError("header", "CSV header must name the columns (contract_id, regime, …)")
                    return
                continue
        try:
            if fmt == "jsonl":
                try:
                    payload = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecordError(None, f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
            else:
                values = next(csv.reader([line], delimiter=delimiter))
                if len(values) > len(header or []):
                    raise RecordError(None, f"{len(values)} fields for {len(header or [])} columns")
                payload = csv_row_to_payload(dict(zip(header or [], values, strict=False)))
            yield n, to_case(payload)
        except RecordError as err:
            if err.contract_id is None and fmt == "csv":
                err.contract_id = (
                    dict(zip(header or [], next(csv.reader([line], delimiter=delimiter)), strict=False)).get(
                        "contract_id"
                    )
                    or None
                )
            yield n, err


async def run_import(
    client: Client,
    task_queue: str,
    lines: Iterable[str] | AsyncIterable[str],
    *,
    name: str | None = None,
    concurrency: int = 32,
    on_result: Callable[[LineResult], Awaitable[None] | None] | None = None,
) -> ImportReport:
    """Import every record with at most ``concurrency`` starts in flight."""
    report = ImportReport()
    queue: asyncio.Queue[tuple[int, UnpaidCase | RecordError] | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def emit(result: LineResult) -> None:
        report.lines.append(result)
        if on_result is not None:
            maybe = on_result(result)
            if asyncio.iscoroutine(maybe):
                await maybe

    async def one(n: int, item: UnpaidCase | RecordError) -> LineResult:
        if isinstance(item, RecordError):
            return LineResult(n, "rejected", item.contract_id, item.field, item.reason)
        try:
            outcome, detail = await cases.import_case(client, item, task_queue)
            return LineResult(n, outcome, item.contract_id, None, detail or None)
        except cases.CaseError as err:
            return LineResult(
                n, "rejected" if err.status == 422 else "failed", item.contract_id, err.field, err.message
            )
        except RPCError as err:
            return LineResult(n, "failed", item.contract_id, None, f"Temporal error ({err.status.name}): {err.message}")

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            await emit(await one(*item))

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        async for item in parse_records(lines, name):
            await queue.put(item)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
    return report


def file_lines(path: Path) -> Iterable[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from fh
