"""Demo cases for the embedded stack: several contracts at different stages.

Most run in the ``demo-accelere`` portfolio (compressed clock: one legal day = 5 seconds,
labelled as such in the UI and on the letters) so a person sees whole timelines in
minutes; two run on the real clock with real legal dates.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import Client

from models import calendar as cal
from models.payloads import UnpaidCase
from starter import cases


def _case(contract_id: str, *, due_days_ago: int, portfolio: str = "demo-accelere", regime: str = "iard",
          amount: str = "89.90", paid: str = "0", email: str | None = None, consent: bool = True,
          name: str = "Camille Durand", **extra: Any) -> UnpaidCase:
    from datetime import datetime

    today = cal.paris_date(datetime.now(cal.PARIS))
    return UnpaidCase.model_validate({
        "contract_id": contract_id,
        "regime": regime,
        "portfolio": portfolio,
        "policyholder": {
            "name": name,
            "email": email,
            "lre_consent": consent,
            "address": {"line1": "14 avenue Jean Jaurès", "postal_code": "69007", "city": "Lyon", "country": "FR"},
        },
        "installments": [{"due_date": (today - timedelta(days=due_days_ago)).isoformat(), "amount": amount}],
        "period_premium": str(Decimal(amount) * 12),
        "paid_on_period": paid,
        "currency": "EUR",
        **extra,
    })


def demo_cases() -> list[UnpaidCase]:
    return [
        _case("DEMO-IARD-001", due_days_ago=0, email="camille.durand@example.org", name="Camille Durand"),
        _case("DEMO-IARD-002", due_days_ago=25, email="louis.bernard@example.org", name="Louis Bernard", amount="142.30"),
        _case("DEMO-IARD-003", due_days_ago=15, email="ines.petit+refuse@example.org", name="Inès Petit", amount="64.00"),
        _case("DEMO-IARD-004", due_days_ago=15, email="hugo.moreau+bounce@example.org", name="Hugo Moreau"),
        _case("DEMO-PARTIEL-005", due_days_ago=15, email="lea.roux+negligence@example.org", name="Léa Roux",
              amount="45.00", paid="500.00"),
        _case("DEMO-PAPIER-006", due_days_ago=15, email=None, consent=False, name="Marcel Fournier"),
        _case("DEMO-VIE-007", due_days_ago=15, regime="vie", email="nathalie.girard@example.org",
              name="Nathalie Girard", amount="150.00", has_surrender_value=True),
        _case("DEMO-COLL-008", due_days_ago=15, regime="mutuelle_collective", compulsory_membership=True,
              email="salarie@example.org", name="Paul Lambert", amount="1250.00",
              employer={"name": "Transports Lambert SARL", "email": "compta@transports-lambert.example",
                        "lre_consent": True, "is_professional": True}),
        # Real clock, real legal dates (weeks long): shows true deadlines in the UI.
        _case("REEL-IARD-101", due_days_ago=12, portfolio="default", email="sophie.lefevre@example.org",
              name="Sophie Lefèvre", amount="76.40"),
        _case("REEL-MUT-102", due_days_ago=3, portfolio="default", regime="mutuelle_individuelle",
              email="antoine.mercier@example.org", name="Antoine Mercier", amount="58.20"),
    ]


async def load_demo(client: Client, task_queue: str) -> list[str]:
    """Open every demo case not already open; returns the contract ids opened now."""
    opened = []
    for case in demo_cases():
        try:
            await cases.open_case(client, case, task_queue)
            opened.append(case.contract_id)
        except cases.CaseError as err:
            if err.status != 409:
                raise
    return opened
