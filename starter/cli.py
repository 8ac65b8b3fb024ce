"""The ``precontentieux`` command line (typer + rich).

Each feature module contributes its commands through ``register(app)``.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="precontentieux",
    help="Pre-litigation for French insurers: unpaid-premium recovery (L113-3) and disputes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Feature modules, each with ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES = (
    "starter.cli_stack",  # dev, worker, api
    "starter.cli_deadlines",  # deadlines
    "starter.cli_lre",  # lre-sim
    "starter.cli_letters",  # letters render
    "starter.cli_cases",  # status, pay, hold, resume, cancel, list, import, payments import
    "starter.cli_disputes",  # disputes …
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


if __name__ == "__main__":
    app()
