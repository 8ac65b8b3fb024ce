"""``precontentieux deadlines``: the legal calendar as a tool for operators and auditors.

The very functions the workflows use (models.calendar); JSON with ``--json``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from models import calendar as cal
from models.payloads import Regime
from models.policy import load_policies
from models.settings import get_settings


def _parse_instant(value: str, option: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 date or datetime", param_hint=option) from None
    if dt.tzinfo is None:
        # A bare date or local time is read as Paris local time.
        dt = dt.replace(tzinfo=cal.PARIS)
    return dt


def recovery_deadlines(
    regime: Regime, due: date, *, notice_sent: datetime | None, paid_at: datetime | None,
    portfolio: str = "default", compulsory_membership: bool = False,
) -> dict[str, Any]:
    policy = load_policies(get_settings().policies_file).for_portfolio(portfolio)
    rules = policy.delay_rules(regime, compulsory_membership=compulsory_membership)
    out: dict[str, Any] = {
        "regime": regime.value,
        "portfolio": policy.name,
        "due_date": due.isoformat(),
        "grace_last_day": cal.grace_last_day(due, rules).isoformat(),
        "earliest_notice_date": cal.earliest_notice_date(due, rules).isoformat(),
        "shift_non_working_days": rules.shift_non_working_days,
    }
    if notice_sent is not None:
        sched = cal.notice_schedule(notice_sent, rules)
        out.update(
            sending_date=sched.sending_date.isoformat(),
            suspension_at=sched.suspension_at.isoformat() if sched.suspension_at else None,
            termination_at=sched.termination_at.isoformat() if sched.termination_at else None,
        )
        if regime is Regime.VIE:
            out["termination_or_reduction_at"] = out["termination_at"]
    if paid_at is not None:
        out["reinstatement_at"] = cal.reinstatement_at(paid_at).isoformat()
    return out


def dispute_deadlines(received: date, *, alsace_moselle: bool = False) -> dict[str, Any]:
    d = cal.dispute_deadlines(received, alsace_moselle=alsace_moselle)
    return {
        "received": received.isoformat(),
        "acknowledge_by": d.acknowledge_by.isoformat(),
        "answer_by": d.answer_by.isoformat(),
    }


def register(app: typer.Typer) -> None:
    @app.command()
    def deadlines(
        regime: Regime | None = typer.Option(None, help="Recovery regime (iard, mutuelle_individuelle, …)."),
        due: str | None = typer.Option(None, help="Due date of the unpaid instalment (YYYY-MM-DD)."),
        notice_sent: str | None = typer.Option(None, help="Certified sending instant of the notice (ISO-8601)."),
        paid_at: str | None = typer.Option(None, help="Instant of the full payment (ISO-8601)."),
        portfolio: str = typer.Option("default", help="Portfolio whose policy applies."),
        compulsory_membership: bool = typer.Option(False, help="Compulsory membership: no suspension/termination."),
        dispute: bool = typer.Option(False, "--dispute", help="Compute the complaint SLA deadlines instead."),
        received: str | None = typer.Option(None, help="Date the complaint was received (YYYY-MM-DD)."),
        alsace_moselle: bool = typer.Option(False, help="Add the Alsace-Moselle holidays."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """When can the notice go, when does cover stop? (DOMAIN.md §1.1, §2)"""
        if dispute:
            if not received:
                raise typer.BadParameter("--dispute needs --received YYYY-MM-DD", param_hint="--received")
            result = dispute_deadlines(_parse_instant(received, "--received").date(), alsace_moselle=alsace_moselle)
        else:
            if regime is None or due is None:
                raise typer.BadParameter("give --regime and --due (or --dispute --received)", param_hint="--regime/--due")
            result = recovery_deadlines(
                regime, _parse_instant(due, "--due").date(),
                notice_sent=_parse_instant(notice_sent, "--notice-sent") if notice_sent else None,
                paid_at=_parse_instant(paid_at, "--paid-at") if paid_at else None,
                portfolio=portfolio, compulsory_membership=compulsory_membership,
            )
        if as_json:
            typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
            return
        table = Table(title="Legal deadlines (Europe/Paris)")
        table.add_column("what")
        table.add_column("when")
        for key, value in result.items():
            table.add_row(key.replace("_", " "), "—" if value is None else str(value))
        Console().print(table)
