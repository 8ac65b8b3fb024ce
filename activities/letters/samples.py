"""Sample letter data for previews (``precontentieux letters render``), the benchmark and
tests; and ``context_from_case``, which builds a letter context from an ``UnpaidCase`` with
the same legal calendar the workflow uses, so a preview states real dates.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from models.calendar import (
    PARIS,
    amount_required,
    earliest_notice_date,
    notice_schedule,
    paris_date,
    paris_instant,
    reinstatement_at,
)
from models.letters import DisputeLetterContext, LetterContext
from models.payloads import (
    Address,
    Channel,
    Installment,
    LetterKind,
    Policyholder,
    Regime,
    UnpaidCase,
)
from models.policy import RecoveryPolicy, SenderIdentity

VARIANTS = ("total", "partial", "collective", "life", "life_reduction", "compulsory")
DISPUTE_KINDS = ("dispute_acknowledgement", "dispute_answer", "mediation_referral")

_PEOPLE = [
    ("Mme Claire Dubois", Address(line1="14 rue des Lilas", line2="Bâtiment B, 3e étage", postal_code="69003", city="Lyon")),
    ("M. Jean-Baptiste Lefèvre", Address(line1="2 allée des Érables", postal_code="44000", city="Nantes")),
    ("Mme Françoise Nguyễn-Moreau", Address(line1="87 boulevard Voltaire", postal_code="75011", city="Paris")),
    ("M. Ahmed Benali", Address(line1="5 impasse du Moulin", postal_code="13090", city="Aix-en-Provence")),
    ("Mme Zoé Œhlenschläger", Address(line1="1 place Kléber", postal_code="67000", city="Strasbourg")),
]
_EMPLOYERS = [
    ("SARL Boulangerie Martin & Fils", Address(line1="Service du personnel", line2="23 avenue Jean Jaurès", postal_code="31000", city="Toulouse")),
    ("SAS Transports Garnier", Address(line1="ZI des Pins — BP 12", postal_code="33700", city="Mérignac")),
]
_MEMBERS = ["M. Julien Petit", "Mme Inès Laurent", "M. Hugo Fontaine"]


def demo_sender() -> SenderIdentity:
    return SenderIdentity()


def case_for(variant: str, index: int = 0) -> UnpaidCase:
    """An unpaid case of each kind the letters must handle (DOMAIN.md §1.2, §1.3)."""
    name, address = _PEOPLE[index % len(_PEOPLE)]
    person = Policyholder(name=name, email=f"client{index}@example.org", lre_consent=True, address=address)
    bump = Decimal(index % 7) * Decimal("3.15")
    if variant == "total":
        return UnpaidCase(
            contract_id=f"AUTO-2026-{10450 + index}", regime=Regime.IARD, policyholder=person,
            installments=[Installment(due_date=date(2026, 11, 1), amount=Decimal("85.40") + bump)],
            period_premium=Decimal("1024.80"),
        )
    if variant == "partial":
        return UnpaidCase(
            contract_id=f"SANTE-{58210 + index}", regime=Regime.MUTUELLE_INDIVIDUELLE, portfolio="acme",
            policyholder=person,
            installments=[
                Installment(due_date=date(2026, 10, 5), amount=Decimal("64.30")),
                Installment(due_date=date(2026, 11, 5), amount=Decimal("128.60") + bump),
            ],
            period_premium=Decimal("1543.20"), paid_on_period=Decimal("1350.30"),
        )
    if variant in ("collective", "compulsory"):
        ename, eaddr = _EMPLOYERS[index % len(_EMPLOYERS)]
        employer = Policyholder(name=ename, email=f"rh{index}@example.com", lre_consent=True, address=eaddr, is_professional=True)
        return UnpaidCase(
            contract_id=f"COLL-{7300 + index}",
            regime=Regime.PREVOYANCE_COLLECTIVE if variant == "collective" else Regime.MUTUELLE_COLLECTIVE,
            policyholder=Policyholder(name=_MEMBERS[index % len(_MEMBERS)], address=address),
            employer=employer,
            installments=[Installment(due_date=date(2026, 11, 1), amount=Decimal("12345.67") + bump)],
            period_premium=Decimal("148148.04"), compulsory_membership=variant == "compulsory",
        )
    if variant in ("life", "life_reduction"):
        return UnpaidCase(
            contract_id=f"VIE-{90210 + index}", regime=Regime.VIE, policyholder=person,
            installments=[Installment(due_date=date(2026, 11, 1), amount=Decimal("150.00") + bump)],
            period_premium=Decimal("1800.00"), has_surrender_value=variant == "life_reduction",
        )
    raise ValueError(f"unknown sample variant {variant!r}; expected one of {VARIANTS}")


def context_from_case(
    case: UnpaidCase,
    kind: LetterKind | str,
    *,
    policy: RecoveryPolicy | None = None,
    notice_sent_at: datetime | None = None,
    letter_date: date | None = None,
    paid: Decimal = Decimal("0"),
    paid_at: datetime | None = None,
    due_during_suspension: Decimal = Decimal("0"),
    channel: Channel | None = None,
    demo_clock: bool = False,
    letter_id: str | None = None,
) -> LetterContext:
    """The context the workflow would compute for ``case`` (same calendar functions)."""
    kind = LetterKind(kind)
    policy = policy or RecoveryPolicy()
    rules = policy.delay_rules(case.regime, compulsory_membership=case.compulsory_membership)
    if notice_sent_at is None:
        notice_sent_at = paris_instant(earliest_notice_date(case.first_due_date, rules), time(policy.send_hour))
    schedule = notice_schedule(notice_sent_at, rules)
    collective = case.regime in (Regime.MUTUELLE_COLLECTIVE, Regime.PREVOYANCE_COLLECTIVE)
    recipient = case.employer if (collective and case.employer) else case.policyholder
    arrears = case.arrears
    # Recovery costs are charged by the procedure, never by a friendly reminder.
    fees = Decimal("0") if kind is LetterKind.REMINDER else policy.recovery_fee
    amount_due = amount_required(arrears, due_during_suspension, fees)
    if letter_date is None:
        letter_date = {
            LetterKind.REMINDER: case.first_due_date + timedelta(days=policy.reminders[0].offset_days if policy.reminders else 3),
            LetterKind.SUSPENSION_NOTICE: (schedule.suspension_at or notice_sent_at).astimezone(PARIS).date(),
            LetterKind.TERMINATION: (schedule.termination_at or notice_sent_at).astimezone(PARIS).date(),
            LetterKind.LITIGATION_SUMMARY: (schedule.termination_at or notice_sent_at).astimezone(PARIS).date() + timedelta(days=1),
        }.get(kind, paris_date(notice_sent_at))
    if kind is LetterKind.REINSTATEMENT and paid_at is None:
        paid_at = (schedule.suspension_at or notice_sent_at) + timedelta(days=3, hours=10)
    if kind in (LetterKind.REINSTATEMENT,) and not paid:
        paid = amount_due
    if kind is LetterKind.PAYMENT_ACKNOWLEDGEMENT and not paid:
        paid = (arrears / 2).quantize(Decimal("0.01"))
    if paid_at is not None and kind is LetterKind.REINSTATEMENT:
        letter_date = paris_date(paid_at) + timedelta(days=1)
    return LetterContext(
        letter_id=letter_id or f"{case.contract_id}-{kind.value}-1",
        kind=kind,
        channel=channel or _default_channel(kind, policy),
        contract_id=case.contract_id,
        portfolio=case.portfolio,
        regime=case.regime,
        unpaid_kind=case.unpaid_kind,
        currency=case.currency,
        recipient=recipient,
        policyholder_name=case.policyholder.name,
        letter_date=letter_date,
        installments=case.installments,
        first_due_date=case.first_due_date,
        arrears=arrears,
        fees=fees,
        due_during_suspension=due_during_suspension,
        amount_paid=paid,
        amount_due=amount_due,
        balance=max(amount_due - paid, Decimal("0")),
        period_premium=case.period_premium,
        paid_on_period=case.paid_on_period,
        suspension_at=schedule.suspension_at,
        termination_at=schedule.termination_at,
        reinstatement_at=reinstatement_at(paid_at) if (paid_at and kind is LetterKind.REINSTATEMENT) else None,
        notice_sent_at=notice_sent_at if kind is not LetterKind.REMINDER else None,
        announce_termination=policy.notice_announces_termination,
        compulsory_membership=case.compulsory_membership,
        life_outcome=("reduction" if case.has_surrender_value else "termination") if case.regime is Regime.VIE else None,
        payment_reference=f"IMP-{case.contract_id}",
        demo_clock=demo_clock,
    )


def _default_channel(kind: LetterKind, policy: RecoveryPolicy) -> Channel:
    if kind is LetterKind.REMINDER:
        return policy.reminders[0].channel if policy.reminders else Channel.ERE
    return policy.notice_channel


_ACME = RecoveryPolicy(name="acme", recovery_fee=Decimal("10.00"), notice_announces_termination=False)


def sample_context(kind: LetterKind | str, variant: str = "total", index: int = 0, **kw) -> LetterContext:
    case = case_for(variant, index)
    policy = _ACME if case.portfolio == "acme" else RecoveryPolicy()
    kw.setdefault("letter_id", f"L-{case.contract_id}-{LetterKind(kind).value}-{index}")
    return context_from_case(case, kind, policy=policy, **kw)


def sample_contexts(kind: LetterKind | str, count: int, variants: tuple[str, ...] = VARIANTS) -> list[LetterContext]:
    """``count`` varied contexts of one kind, cycling through the regimes/variants."""
    kind = LetterKind(kind)
    if kind is LetterKind.REMINDER:
        variants = tuple(v for v in variants if not v.startswith("life")) or ("total",)
    return [sample_context(kind, variants[i % len(variants)], i) for i in range(count)]


def sample_dispute(kind: str, index: int = 0, outcome: str = "rejected") -> DisputeLetterContext:
    name, address = _PEOPLE[index % len(_PEOPLE)]
    received = date(2026, 12, 18)
    return DisputeLetterContext(
        letter_id=f"D-2026-{400 + index}-{kind}",
        kind=kind,
        dispute_id=f"R-2026-{400 + index}",
        member_name=name,
        member_email=f"adherent{index}@example.org",
        member_id=f"ADH-{33100 + index}",
        member_address=[address.line1, *([address.line2] if address.line2 else []), f"{address.postal_code} {address.city.upper()}"],
        contract_id=f"SANTE-{58210 + index}",
        received_on=received,
        subject="Remboursement de soins dentaires contesté",
        category="reimbursement",
        letter_date={"dispute_acknowledgement": date(2026, 12, 21), "dispute_answer": date(2027, 2, 10)}.get(kind, date(2027, 2, 20)),
        answer_due_by=date(2027, 2, 16),
        outcome=outcome if kind == "dispute_answer" else None,
        decision_text=(
            "Votre contrat prévoit un remboursement des prothèses dentaires à hauteur de 125 % de la base "
            "de remboursement de la Sécurité sociale. Les soins facturés le 3 novembre 2026 ont été remboursés "
            "conformément à ce plafond ; le dépassement d'honoraires reste à votre charge.\n\n"
            "Nous avons toutefois constaté une erreur de calcul sur la couronne provisoire, que nous corrigeons."
        ) if kind == "dispute_answer" else None,
        amount=Decimal("42.50") if (kind == "dispute_answer" and outcome != "rejected") else None,
        handler_name="Mme Sophie Marchand, service Réclamations",
    )
