"""``precontentieux disputes …``: complaints from the command line.

Same validation and errors as the HTTP API (starter/api/disputes.py):

    precontentieux disputes open complaint.json          # or --id/--member/--subject…
    precontentieux disputes status D-42 [--json]
    precontentieux disputes act D-42 respond --data '{"outcome": "rejected", "text": "…"}'
    precontentieux disputes ack D-42 | assign D-42 "Julie Martin" | close D-42
    precontentieux disputes triage "Hausse de cotisation" "Ma cotisation passe de 78 à 96 €"
    precontentieux disputes triage-eval
    precontentieux disputes triage-export-corrections
    precontentieux disputes demo                          # demo disputes at every stage
"""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from models.disputes import CATEGORY_LABELS_FR, Dispute, DisputeStatus, Member

console = Console()
app = typer.Typer(help="Complaints and disputes (réclamations): open, follow, act, triage.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="disputes")


# ---------------------------------------------------------------------- plumbing


def _run(coro_factory) -> Any:
    from starter.api.disputes import DisputeError

    async def main():
        from models.settings import get_settings
        from starter.temporal_client import connect

        settings = get_settings()
        client = await connect(settings)
        return await coro_factory(client, settings)

    try:
        return asyncio.run(main())
    except DisputeError as err:
        console.print(f"[red]error {err.status}:[/red] {err.message}")
        for e in err.errors:
            console.print(f"  [red]{e['field']}[/red]: {e['reason']}")
        raise typer.Exit(2 if err.status == 422 else 1) from None


def _show(status: DisputeStatus, as_json: bool) -> None:
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
        return
    console.print(
        f"[bold]Réclamation {status.dispute_id}[/bold] — {status.member.name}"
        + (f" — contrat {status.contract_id}" if status.contract_id else "")
    )
    console.print(f"Objet : {status.subject}")
    console.print(
        f"Catégorie : {CATEGORY_LABELS_FR[status.category]} ({status.category_source})   "
        f"Étape : [bold]{status.stage.value}[/bold]   SLA : [bold]{status.sla_status.value}[/bold]"
    )
    clocks = Table("délai", "dû le (24:00 Paris)", "état", "alertes", "terminé")
    for c in status.clocks:
        colour = {"breached": "red", "at_risk": "yellow", "met": "green"}.get(c.state.value, "white")
        clocks.add_row(
            c.kind.value,
            c.last_day.isoformat(),
            f"[{colour}]{c.state.value}[/{colour}]",
            ", ".join(f"{t:.0%}" for t in c.alerts_fired),
            c.completed_at.isoformat() if c.completed_at else "",
        )
    console.print(clocks)
    history = Table("quand", "événement", "détail")
    for h in status.history:
        history.add_row(h.at.isoformat(timespec="minutes"), h.kind, h.detail)
    console.print(history)


# ---------------------------------------------------------------------- commands


@app.command("open")
def open_(
    file: Path | None = typer.Argument(None, help="JSON file with the Dispute payload"),
    dispute_id: str | None = typer.Option(None, "--id"),
    member: str | None = typer.Option(None, help="member's name"),
    email: str | None = typer.Option(None),
    contract: str | None = typer.Option(None),
    subject: str | None = typer.Option(None),
    description: str = typer.Option(""),
    category: str | None = typer.Option(None, help="leave empty to triage automatically"),
    received: str | None = typer.Option(None, help="ISO datetime with offset; default now"),
    channel: str = typer.Option("email"),
) -> None:
    """Open a dispute (starts DisputeWorkflow dispute-{id})."""
    from starter.api.disputes import open_dispute, validate

    if file is not None:
        payload = json.loads(file.read_text(encoding="utf-8"))
    else:
        if not (dispute_id and member and subject):
            raise typer.BadParameter("give a JSON FILE, or --id, --member and --subject")
        payload = {
            "dispute_id": dispute_id,
            "member": {"name": member, "email": email},
            "contract_id": contract,
            "received_at": received or datetime.now(timezone.utc).isoformat(),
            "channel": channel,
            "subject": subject,
            "description": description,
            "category": category,
        }

    async def go(client, settings):
        dispute = validate(Dispute, payload)
        handle = await open_dispute(client, dispute, settings.temporal_task_queue)
        return dispute, handle

    dispute, handle = _run(go)
    console.print(f"[green]opened[/green] {handle.id}")


@app.command()
def status(dispute_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A dispute's stage, clocks and history."""
    from starter.api.disputes import dispute_status

    _show(_run(lambda client, _s: dispute_status(client, dispute_id)), as_json)


@app.command("act")
def act_(
    dispute_id: str,
    action: str = typer.Argument(..., help="acknowledge, assign, respond, customer_reply, close, …"),
    data: str = typer.Option("{}", "--data", help="the message as JSON"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send any message of the DisputeWorkflow contract."""
    from starter.api.disputes import act

    try:
        payload = json.loads(data)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"--data is not JSON: {err}") from None
    _show(_run(lambda client, _s: act(client, dispute_id, action, payload)), as_json)


def _shortcut(action: str, payload: dict, dispute_id: str, as_json: bool) -> None:
    from starter.api.disputes import act

    _show(_run(lambda client, _s: act(client, dispute_id, action, payload)), as_json)


@app.command()
def ack(dispute_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Acknowledge receipt (accusé de réception)."""
    _shortcut("acknowledge", {}, dispute_id, as_json)


@app.command()
def assign(dispute_id: str, handler: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Assign a handler."""
    _shortcut("assign", {"name": handler}, dispute_id, as_json)


@app.command()
def respond(
    dispute_id: str,
    outcome: str = typer.Option(..., help="upheld | partially_upheld | rejected"),
    text: str = typer.Option(...),
    amount: str | None = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer the member (produces the answer letter; a rejection names the mediator)."""
    payload = {"outcome": outcome, "text": text} | ({"amount": amount} if amount else {})
    _shortcut("respond", payload, dispute_id, as_json)


@app.command()
def close(
    dispute_id: str, reason: str = typer.Option("closed by the handler"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Close the dispute (resumes a held recovery case)."""
    _shortcut("close", {"reason": reason}, dispute_id, as_json)


@app.command()
def triage(subject: str, description: str = typer.Argument(""), as_json: bool = typer.Option(False, "--json")) -> None:
    """Categorise a complaint and show the terms that decided it (no Temporal needed)."""
    from models.triage import default_model

    result = default_model().predict(subject, description)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    console.print(
        f"[bold]{CATEGORY_LABELS_FR[result.category]}[/bold] ({result.category.value}), "
        f"confiance {result.confidence:.0%} — modèle {result.model_version}"
    )
    table = Table("terme", "poids")
    for t in result.top_terms:
        table.add_row(t.term, f"{t.weight:+.3f}")
    console.print(table)


@app.command("triage-eval")
def triage_eval(show_errors: bool = typer.Option(False, "--errors")) -> None:
    """Accuracy of the classifier on the held-out split of the labelled dataset."""
    from models.triage import evaluate

    ev = evaluate()
    console.print(f"held-out accuracy {ev.accuracy:.1%} ({ev.n_test} complaints; trained on {ev.n_train})")
    table = Table("catégorie", "exactitude")
    for cat, acc in ev.per_category.items():
        table.add_row(cat, f"{acc:.0%}")
    console.print(table)
    if show_errors:
        for text, expected, predicted in ev.errors:
            console.print(f"- [yellow]{expected} → {predicted}[/yellow] {text}")


@app.command("triage-export-corrections")
def triage_export_corrections(
    out: Path | None = typer.Option(None, help="default: data/triage/corrections-<UTC timestamp>.csv"),
) -> None:
    """Write the operators' category corrections not yet used as a training CSV."""
    from activities.db import make_engine
    from models.settings import get_settings
    from models.triage import DATA_DIR

    n = export_corrections(
        make_engine(get_settings().resolved_database_url),
        out or DATA_DIR / (f"corrections-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.csv"),
    )
    console.print(f"{n} correction(s) exported" + ("" if n else " (nothing new)"))


def export_corrections(engine, path: Path) -> int:
    """Corrections → ``category,subject,description`` rows (the text goes in ``subject``);
    each correction is exported once. ``models.triage`` trains on every CSV of the folder."""
    from sqlmodel import Session, select

    from models.disputes import TriageCorrectionRecord

    with Session(engine) as db:
        rows = db.exec(
            select(TriageCorrectionRecord).where(TriageCorrectionRecord.used_for_training == False)  # noqa: E712
        ).all()
        if not rows:
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["category", "subject", "description"])
            for row in rows:
                writer.writerow([row.corrected, row.text, ""])
                row.used_for_training = True
                db.add(row)
        db.commit()
        return len(rows)


# ---------------------------------------------------------------------- demo


async def seed_demo_disputes(client, task_queue: str, now: datetime, *, prefix: str = "DEMO") -> list[str]:
    """Open demo disputes at different stages so the Temporal UI shows each SLA state.

    Receipt dates are in the past so the clocks are already at risk or breached: the
    workflows fire the missed alerts at once. Returns the dispute ids (already open ones
    are left as they are, so this is safe to re-run)."""
    from datetime import timedelta

    from starter.api.disputes import DisputeError, act, open_dispute

    demo = [
        # (suffix, days ago, category or None for triage, subject, description, actions)
        (
            "1",
            0,
            None,
            "Hausse de cotisation injustifiée",
            "Ma cotisation passe de 78 à 96 euros au 1er janvier sans explication.",
            [],
        ),
        (
            "2",
            9,
            "reimbursement",
            "Remboursement dentaire insuffisant",
            "Ma couronne n'a été remboursée que 120 euros.",
            [("assign", {"name": "Julie Martin"})],
        ),
        (
            "3",
            20,
            "service_quality",
            "Impossible de joindre le service client",
            "Quarante-cinq minutes d'attente puis la ligne coupe.",
            [],
        ),
        (
            "4",
            50,
            "guarantees",
            "Délai de carence appliqué à tort",
            "On m'oppose six mois de carence malgré un changement de mutuelle sans interruption.",
            [("acknowledge", {}), ("assign", {"name": "Karim Benali"})],
        ),
        (
            "5",
            30,
            "termination",
            "Résiliation non prise en compte",
            "Vous prélevez encore après ma lettre de résiliation.",
            [
                ("acknowledge", {}),
                ("respond", {"outcome": "rejected", "text": "Votre demande est arrivée après l'échéance annuelle."}),
                ("customer_reply", {"accepts": False, "text": "Je conteste"}),
                ("refer_to_mediation", {}),
            ],
        ),
        (
            "6",
            12,
            "reimbursement",
            "Lunettes non remboursées",
            "Facture d'opticien envoyée il y a six semaines.",
            [
                ("acknowledge", {}),
                ("respond", {"outcome": "upheld", "text": "Remboursement effectué.", "amount": "180.00"}),
                ("customer_reply", {"accepts": True}),
            ],
        ),
    ]
    ids = []
    for suffix, days, category, subject, description, actions in demo:
        dispute = Dispute(
            dispute_id=f"{prefix}-{suffix}",
            member=Member(name=f"Membre démo {suffix}", email=f"membre{suffix}@example.org"),
            received_at=now - timedelta(days=days),
            channel="portal",
            subject=subject,
            description=description,
            category=category,
        )
        ids.append(dispute.dispute_id)
        try:
            await open_dispute(client, dispute, task_queue)
        except DisputeError:
            continue  # already seeded
        for action, payload in actions:
            await act(client, dispute.dispute_id, action, payload)
    return ids


@app.command("demo")
def demo() -> None:
    """Open demo disputes at different stages (safe to re-run)."""
    ids = _run(
        lambda client, settings: seed_demo_disputes(client, settings.temporal_task_queue, datetime.now(timezone.utc))
    )
    console.print(f"demo disputes: {', '.join(ids)}")
