"""Commands for collection teams: ``status``, ``pay``, ``hold``, ``resume``, ``cancel``,
``list``, ``import FILE`` and ``payments import FILE``.

They call the same service layer as the HTTP API (``starter.cases``, ``starter.bulk_import``,
``starter.bank_matching``), so validation and answers are the same; errors print the
reason and exit non-zero (1 for a refused operation, 2 for invalid input, 3 when Temporal
cannot be reached).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from models.payloads import Cancel, CaseStatus, Hold, Payment
from models.settings import get_settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

_STAGE_STYLE = {
    "grace": "yellow",
    "notice_sent": "dark_orange",
    "suspended": "red",
    "terminated": "bold red",
    "litigation": "bold magenta",
    "regularized": "green",
    "reinstated": "green",
    "on_hold": "cyan",
    "cancelled": "dim",
}


def _run(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Connect with the settings, run ``fn(client)``, turn errors into a message and an exit code."""
    from temporalio.service import RPCError

    from starter.cases import CaseError
    from starter.temporal_client import connect

    async def main() -> T:
        client = await connect(get_settings())
        return await fn(client)

    try:
        return asyncio.run(main())
    except CaseError as err:
        where = f" [{err.field}]" if err.field else ""
        err_console.print(f"[bold red]error {err.status}{where}:[/] {err.message}")
        raise typer.Exit(2 if err.status == 422 else 1) from None
    except (RPCError, RuntimeError, ConnectionError) as err:
        settings = get_settings()
        err_console.print(f"[bold red]Temporal unavailable at {settings.temporal_address}:[/] {err}")
        raise typer.Exit(3) from None


def _fmt(at: datetime | None) -> str:
    if at is None:
        return "—"
    from models import calendar as cal

    return at.astimezone(cal.PARIS).strftime("%d/%m/%Y %H:%M")


def render_status(st: CaseStatus) -> None:
    stage = st.stage.value
    style = _STAGE_STYLE.get(stage, "white")
    console.print(
        f"[bold]Contract {st.contract_id}[/]  [{style}]{stage.replace('_', ' ')}[/]"
        f"  · {st.unpaid_kind.value} unpaid · regime {st.regime.value} · portfolio {st.portfolio}"
        + ("  [bold yellow](DEMO compressed clock)[/]" if st.compressed_clock > 1 else "")
    )
    console.print(f"Balance [bold]{st.balance} {st.currency}[/] (due {st.amount_due}, paid {st.amount_paid})")
    dates = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in (
        ("notice sent", st.notice_sent_at),
        ("suspension", st.suspension_at),
        ("termination", st.termination_at),
        ("reinstatement", st.reinstatement_at),
    ):
        if value:
            dates.add_row(label, _fmt(value))
    if st.next_deadline:
        dates.add_row(
            "[bold]next[/]", f"[bold]{st.next_deadline.kind.replace('_', ' ')} — {_fmt(st.next_deadline.at)}[/]"
        )
    if st.hold_reason:
        dates.add_row("on hold", st.hold_reason)
    if dates.row_count:
        console.print(dates)
    if st.letters:
        letters = Table(title="Letters", title_justify="left")
        for col in ("letter", "channel", "status", "sent (Paris)"):
            letters.add_column(col)
        for letter in st.letters:
            letters.add_row(
                f"{letter.kind.value} #{letter.attempt}", letter.channel.value, letter.status, _fmt(letter.sent_at)
            )
        console.print(letters)
    timeline = Table(title="Timeline (Paris time)", title_justify="left")
    timeline.add_column("when", no_wrap=True)
    timeline.add_column("event", no_wrap=True)
    timeline.add_column("detail")
    for h in st.history:
        kind_style = (
            "red"
            if h.kind in ("rejected", "letter_failed", "delivery_problem")
            else ("green" if h.kind.startswith("payment") or h.kind in ("regularized", "reinstated") else "")
        )
        timeline.add_row(_fmt(h.at), f"[{kind_style}]{h.kind}[/]" if kind_style else h.kind, h.detail)
    console.print(timeline)


def _decimal(value: str, name: str) -> Decimal:
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not an amount", param_hint=name) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        contract: str = typer.Argument(..., help="Contract id"),
        as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    ) -> None:
        """Show a recovery case: stage, balance, legal dates, letters and its timeline."""
        from starter import cases

        st = _run(lambda c: cases.get_status(c, contract))
        if as_json:
            typer.echo(st.model_dump_json(indent=2))
        else:
            render_status(st)

    @app.command()
    def pay(
        contract: str = typer.Argument(..., help="Contract id"),
        amount: str = typer.Option(..., help="Amount received, e.g. 120.50"),
        payment_id: str = typer.Option(..., "--payment-id", help="Unique id of the payment (idempotency key)"),
        currency: str = typer.Option("EUR"),
        received_at: datetime = typer.Option(None, help="When it was received (ISO-8601 with offset); default now"),
        method: str = typer.Option(None, help="virement, chèque, CB…"),
        reference: str = typer.Option(None, help="Payer's reference"),
    ) -> None:
        """Register a payment (idempotent: the same --payment-id is applied once)."""
        from starter import cases

        payment = Payment(
            payment_id=payment_id,
            amount=_decimal(amount, "--amount"),
            currency=currency,
            received_at=received_at or datetime.now(timezone.utc),
            method=method,
            reference=reference,
        )
        st = _run(lambda c: cases.register_payment(c, contract, payment))
        console.print(
            f"[green]payment {payment_id} registered[/]: stage {st.stage.value}, balance {st.balance} {st.currency}"
        )

    @app.command()
    def hold(
        contract: str,
        reason: str = typer.Option(..., help="Why the case is held (e.g. dispute n°…)"),
        until: datetime = typer.Option(None, help="Automatic resume at (ISO-8601 with offset)"),
    ) -> None:
        """Put a case on hold: its legal clock stops until resumed."""
        from starter import cases

        _run(lambda c: cases.hold(c, contract, Hold(reason=reason, until=until)))
        console.print(f"[cyan]hold requested for {contract}[/]")

    @app.command()
    def resume(contract: str) -> None:
        """Resume a held case; pending deadlines move by the time spent on hold."""
        from starter import cases

        _run(lambda c: cases.resume(c, contract))
        console.print(f"[cyan]resume requested for {contract}[/]")

    @app.command()
    def cancel(contract: str, reason: str = typer.Option(..., help="Why the recovery is cancelled")) -> None:
        """Cancel a recovery case."""
        from starter import cases

        _run(lambda c: cases.cancel(c, contract, Cancel(reason=reason)))
        console.print(f"[dim]cancel requested for {contract}[/]")

    @app.command("list")
    def list_cases(
        stage: str = typer.Option(None, help="RecoveryStage, e.g. suspended"),
        portfolio: str = typer.Option(None),
        deadline_before: datetime = typer.Option(None, help="Next deadline at or before (ISO-8601 with offset)"),
        limit: int = typer.Option(50, min=1, max=1000),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """List recovery cases (Temporal visibility on the search attributes)."""
        from starter import cases

        if deadline_before is not None and deadline_before.tzinfo is None:
            deadline_before = deadline_before.replace(tzinfo=timezone.utc)

        async def fetch(client) -> list[dict]:
            items: list[dict] = []
            token = None
            while len(items) < limit:
                page, token = await cases.list_cases(
                    client,
                    stage=stage,
                    portfolio=portfolio,
                    page_size=min(limit, 500),
                    next_page_token=token,
                    deadline_before=deadline_before,
                )
                items += page
                if not token:
                    break
            return items[:limit]

        items = _run(fetch)
        if as_json:
            typer.echo(json.dumps(items, indent=2))
            return
        table = Table(title=f"{len(items)} case(s)")
        for col in ("contract", "stage", "portfolio", "kind", "balance", "next deadline", "status"):
            table.add_column(col)
        for it in items:
            st = it["stage"] or "?"
            nd = datetime.fromisoformat(it["next_deadline"]) if it["next_deadline"] else None
            table.add_row(
                it["contract_id"] or it["workflow_id"],
                f"[{_STAGE_STYLE.get(st, 'white')}]{st}[/]",
                it["portfolio"] or "",
                it["unpaid_kind"] or "",
                f"{it['amount_due']:.2f}" if it["amount_due"] is not None else "",
                _fmt(nd),
                it["status"] or "",
            )
        console.print(table)

    @app.command("import")
    def import_file(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV or JSON lines"),
        concurrency: int = typer.Option(32, min=1, max=256, help="Starts in flight at once"),
        report: Path = typer.Option(None, help="Write the per-line report (JSON) here"),
    ) -> None:
        """Import unpaid contracts (columns: see starter/bulk_import.py); safe to re-run."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from starter import bulk_import

        with open(file, "rb") as fh:
            total = max(
                0,
                sum(1 for line in fh if line.strip())
                - (0 if file.suffix.lower() in (".jsonl", ".ndjson", ".json") else 1),
            )
        with Progress(
            TextColumn("[bold]import"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=err_console,
        ) as progress:
            task = progress.add_task("import", total=total, counts="")
            tally: dict[str, int] = {}

            def on_result(r: bulk_import.LineResult) -> None:
                tally[r.outcome] = tally.get(r.outcome, 0) + 1
                progress.update(task, advance=1, counts=" ".join(f"{k}={v}" for k, v in sorted(tally.items())))

            result = _run(
                lambda c: bulk_import.run_import(
                    c,
                    get_settings().temporal_task_queue,
                    bulk_import.file_lines(file),
                    name=file.name,
                    concurrency=concurrency,
                    on_result=on_result,
                )
            )
        data = result.as_dict()
        if report:
            report.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        problems = [line for line in data["lines"] if line["outcome"] in ("rejected", "failed")]
        if problems:
            table = Table(title="Lines not imported")
            for col in ("line", "contract", "outcome", "field", "reason"):
                table.add_column(col)
            for p in problems[:50]:
                table.add_row(str(p["line"]), p["contract_id"] or "", p["outcome"], p["field"] or "", p["reason"] or "")
            console.print(table)
        console.print("  ".join(f"{k}: [bold]{v}[/]" for k, v in data["counts"].items()))
        if data["counts"]["failed"]:
            raise typer.Exit(3)

    payments = typer.Typer(help="Payments: bank statements (camt.054 / camt.053).", no_args_is_help=True)
    app.add_typer(payments, name="payments")

    @payments.command("import")
    def payments_import(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="camt.054 or camt.053 XML"),
        currency: str = typer.Option("EUR", help="Currency the recovery cases are booked in"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Match a statement's credits to cases by reference and book them (re-import books nothing twice)."""
        from starter import bank_matching
        from starter.cases import CaseError

        async def go(client):
            try:
                return await bank_matching.import_statement(client, file.read_bytes(), currency=currency)
            except bank_matching.StatementError as err:
                raise CaseError(422, f"not a readable camt.054/053 statement: {err}", "file") from err

        data = _run(go)
        if as_json:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        table = Table(
            title=f"{data['kind']} {data['version'] or ''} {data['message_id'] or ''} — {data['credits']} credit(s)"
        )
        for col in ("bank ref", "amount", "outcome", "contract", "balance", "reason / remittance"):
            table.add_column(col)
        colours = {
            "booked": "green",
            "booked_partial": "yellow",
            "already_booked": "dim",
            "unmatched": "red",
            "ambiguous": "magenta",
            "not_matchable": "red",
            "rejected": "red",
            "failed": "bold red",
        }
        for r in data["lines"]:
            table.add_row(
                r["payment_id"],
                f"{r['amount']} {r['currency']}",
                f"[{colours.get(r['outcome'], 'white')}]{r['outcome']}[/]",
                r["contract_id"] or "",
                r["balance"] or "",
                r["reason"] or r["remittance"],
            )
        console.print(table)
        console.print("  ".join(f"{k}: [bold]{v}[/]" for k, v in data["counts"].items() if v))
