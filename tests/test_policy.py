"""Recovery policies per portfolio, loaded from the shipped YAML and from a custom file."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from models.payloads import Regime
from models.policy import load_policies


def test_shipped_policies_have_legal_defaults_and_overrides():
    book = load_policies()
    default = book.for_portfolio("default")
    assert (default.grace_days, default.suspension_days, default.termination_days, default.life_days) == (10, 30, 10, 40)
    assert default.shift_non_working_days and default.notice_announces_termination
    acme = book.for_portfolio("acme")
    assert acme.recovery_fee == Decimal("10.00") and not acme.notice_announces_termination
    assert [r.offset_days for r in acme.reminders] == [2, 7]
    assert book.for_portfolio("unknown-portfolio").name == "default"
    demo = book.for_portfolio("demo-accelere")
    assert demo.clock_compression > 1 and "démonstration" in demo.sender.name.lower()
    assert demo.sender.iban == default.sender.iban  # sender fields merge with the defaults


def test_regime_rules_from_policy():
    p = load_policies().for_portfolio("default")
    assert p.delay_rules(Regime.VIE).suspension_days is None and p.delay_rules(Regime.VIE).life_days == 40
    assert p.delay_rules(Regime.MUTUELLE_COLLECTIVE, compulsory_membership=True).termination_days is None
    assert p.delay_rules(Regime.IARD).suspension_days == 30


def test_custom_file_and_clear_errors(tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text("defaults: {grace_days: 15, shift_non_working_days: false}\nportfolios: {x: {recovery_fee: '5'}}\n")
    book = load_policies(good)
    assert book.for_portfolio("x").grace_days == 15 and book.for_portfolio("x").recovery_fee == Decimal("5")
    bad = tmp_path / "bad.yaml"
    bad.write_text("portfolios: {x: {grace_dayz: 3}}\n")
    with pytest.raises(ValidationError, match="grace_dayz"):
        load_policies(bad)
    negative = tmp_path / "neg.yaml"
    negative.write_text("defaults: {suspension_days: -1}\n")
    with pytest.raises(ValidationError, match="suspension_days"):
        load_policies(negative)
