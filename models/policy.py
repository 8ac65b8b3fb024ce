"""Recovery policies per portfolio (the client or product line whose contracts these are).

Loaded from a YAML file (``config/policies.yaml`` by default, ``POLICIES_FILE`` to
override). A portfolio absent from the file gets the ``default`` policy. Every delay of
DOMAIN.md §1 lives here so a portfolio can change it without touching code.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.calendar import DelayRules
from models.payloads import Channel, Regime

DEFAULT_POLICIES_FILE = Path(__file__).resolve().parent.parent / "config" / "policies.yaml"


class Reminder(BaseModel):
    """A friendly reminder (relance amiable) sent ``offset_days`` after the due date."""

    offset_days: int = Field(ge=0)
    channel: Channel = Channel.ERE


class SenderIdentity(BaseModel):
    name: str = "Mutuelle Démo"
    address_lines: list[str] = ["12 rue de la Démonstration", "75009 Paris"]
    legal_mentions: str = "Mutuelle régie par le livre II du Code de la mutualité — SIREN 000 000 000"
    contact: str = "recouvrement@mutuelle-demo.example — 01 23 45 67 89"
    iban: str = "FR7630006000011234567890189"
    bic: str = "AGRIFRPP"
    payment_url_template: str = "https://paiement.mutuelle-demo.example/p/{contract_id}"
    logo_path: str | None = None


class RecoveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    grace_days: int = Field(default=10, ge=0)
    suspension_days: int = Field(default=30, ge=0)
    termination_days: int = Field(default=10, ge=0)
    life_days: int = Field(default=40, ge=0)
    shift_non_working_days: bool = True
    alsace_moselle: bool = False
    # Local Paris hour at which a due letter goes out (never before the legal earliest day).
    send_hour: int = Field(default=9, ge=0, le=23)
    reminders: list[Reminder] = Field(default_factory=list)
    notice_channel: Channel = Channel.LRE
    fallback_channel: Channel = Channel.PAPER
    # Partial unpaid whose balance is below this amount only gets reminders, never a notice.
    partial_reminder_only_below: Decimal = Field(default=Decimal("0"), ge=0)
    recovery_fee: Decimal = Field(default=Decimal("0"), ge=0)
    notice_announces_termination: bool = True
    send_suspension_letter: bool = False
    # Acknowledge each partial payment with a letter stating the remaining balance.
    acknowledge_partial_payments: bool = True
    # Demo only: how many times faster than real time the legal clock runs. 1 in production.
    clock_compression: float = Field(default=1.0, ge=1.0)
    sender: SenderIdentity = Field(default_factory=SenderIdentity)

    @model_validator(mode="after")
    def _reminders_sorted(self) -> RecoveryPolicy:
        self.reminders = sorted(self.reminders, key=lambda r: r.offset_days)
        return self

    def delay_rules(self, regime: Regime, *, compulsory_membership: bool = False) -> DelayRules:
        common = dict(
            grace_days=self.grace_days,
            shift_non_working_days=self.shift_non_working_days,
            alsace_moselle=self.alsace_moselle,
        )
        if regime is Regime.VIE:
            return DelayRules(suspension_days=None, termination_days=None, life_days=self.life_days, **common)
        if compulsory_membership:
            # L113-3 al. 5 / L221-8: compulsory membership under a branch agreement.
            return DelayRules(suspension_days=None, termination_days=None, **common)
        return DelayRules(
            suspension_days=self.suspension_days, termination_days=self.termination_days, **common
        )


class PolicyBook(BaseModel):
    policies: dict[str, RecoveryPolicy]

    def for_portfolio(self, portfolio: str) -> RecoveryPolicy:
        policy = self.policies.get(portfolio) or self.policies["default"]
        return policy


def load_policies(path: Path | None = None) -> PolicyBook:
    path = path or DEFAULT_POLICIES_FILE
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defaults = raw.get("defaults", {})
    policies: dict[str, RecoveryPolicy] = {"default": RecoveryPolicy(name="default", **defaults)}
    for name, overrides in (raw.get("portfolios") or {}).items():
        merged = {**defaults, **(overrides or {})}
        if "sender" in defaults and "sender" in (overrides or {}):
            merged["sender"] = {**defaults["sender"], **overrides["sender"]}
        policies[name] = RecoveryPolicy(name=name, **merged)
    return PolicyBook(policies=policies)
