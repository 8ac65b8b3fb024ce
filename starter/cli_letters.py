"""``precontentieux letters render``: preview letters as PDF/A files, from sample data or a case.

    precontentieux letters render --kind formal_notice --count 6 --out /tmp/letters
    precontentieux letters render --kind formal_notice --case case.json --out /tmp/letters

``--case`` takes a JSON file holding an ``UnpaidCase`` (the workflow input; the letter's
dates and amounts are then computed with the legal calendar, as the workflow does) or a
ready ``LetterContext``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

KINDS = (
    "reminder", "formal_notice", "suspension_notice", "termination", "reinstatement",
    "litigation_summary", "payment_acknowledgement",
    "dispute_acknowledgement", "dispute_answer", "mediation_referral",
)

letters_app = typer.Typer(help="Letters: preview and time the PDF/A letters.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(letters_app, name="letters")


@letters_app.command("render")
def render(
    kind: str = typer.Option(..., "--kind", help=f"One of: {', '.join(KINDS)}."),
    count: int = typer.Option(1, "--count", min=1, help="How many letters to render."),
    out: Path = typer.Option(Path("letters-preview"), "--out", help="Output directory."),
    case: Path | None = typer.Option(None, "--case", exists=True, dir_okay=False, help="JSON UnpaidCase or LetterContext."),
    variant: str | None = typer.Option(None, "--variant", help="Sample variant (total, partial, collective, life, life_reduction, compulsory); default: cycle through all."),
    portfolio: str | None = typer.Option(None, "--portfolio", help="Sender identity from this portfolio's policy (default: the case's)."),
    outcome: str = typer.Option("rejected", "--outcome", help="Dispute answer outcome: upheld, partially_upheld, rejected."),
    demo: bool = typer.Option(False, "--demo", help="Print the compressed-clock DEMONSTRATION banner."),
) -> None:
    """Render KIND letters to OUT as PDF/A files and print their SHA-256 and timing."""
    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", param_hint="--kind")
    from activities.letters import samples
    from activities.letters.renderer import LetterRenderer
    from models.letters import LetterContext
    from models.payloads import UnpaidCase
    from models.policy import load_policies

    policies = load_policies()
    out.mkdir(parents=True, exist_ok=True)
    renderer = LetterRenderer()
    started = time.perf_counter()
    try:
        if kind.startswith("dispute") or kind == "mediation_referral":
            sender = policies.for_portfolio(portfolio or "default").sender
            contexts = [samples.sample_dispute(kind, i, outcome=outcome) for i in range(count)]
            results = [(c.letter_id, renderer.render_dispute(c.model_copy(update={"demo_clock": demo}), sender)) for c in contexts]
        else:
            if case is not None:
                raw = json.loads(case.read_text(encoding="utf-8"))
                if "letter_id" in raw and "kind" in raw:
                    base = LetterContext.model_validate(raw).model_copy(update={"kind": kind})
                else:
                    unpaid = UnpaidCase.model_validate(raw)
                    base = samples.context_from_case(unpaid, kind, policy=policies.for_portfolio(unpaid.portfolio))
                contexts = [base if count == 1 else base.model_copy(update={"letter_id": f"{base.letter_id}-{i + 1}"}) for i in range(count)]
            elif variant:
                contexts = [samples.sample_context(kind, variant, i) for i in range(count)]
            else:
                contexts = samples.sample_contexts(kind, count)
            if demo:
                contexts = [c.model_copy(update={"demo_clock": True}) for c in contexts]
            items = [(c, policies.for_portfolio(portfolio or c.portfolio).sender) for c in contexts]
            results = list(zip((c.letter_id for c in contexts), renderer.render_many(items), strict=True))
    except ValueError as exc:  # bad data: a clear message, not a traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    finally:
        renderer.close()
    elapsed = time.perf_counter() - started
    for letter_id, letter in results:
        path = out / f"{letter_id}.pdf"
        path.write_bytes(letter.pdf)
        typer.echo(f"{path}  {letter.page_count} p.  {len(letter.pdf) // 1024} kB  sha256={letter.sha256}")
    typer.echo(f"{len(results)} letter(s) in {elapsed * 1000:.0f} ms ({elapsed * 1000 / len(results):.1f} ms/letter, including start-up)")
