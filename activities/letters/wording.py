"""Regime-dependent wording: the same letter says "prime" to an IARD policyholder and
"cotisation" to a mutual's member, and cites the article of the right code (DOMAIN.md §1.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.letters import LetterContext
from models.payloads import Channel, LetterKind, Regime

COLLECTIVE = frozenset({Regime.MUTUELLE_COLLECTIVE, Regime.PREVOYANCE_COLLECTIVE})


@dataclass(frozen=True)
class Vocabulary:
    premium: str  # "prime" | "cotisation"
    premiums: str
    insurer: str  # how the insurer refers to itself in the third person
    article: str  # "article L113-3 du Code des assurances"
    article_partial: str  # template partial reproducing (or recalling) the article
    cover: str  # "les garanties de votre contrat" …
    termination_verb: str  # "résilier" | "dénoncer"


_VOCAB = {
    Regime.IARD: Vocabulary(
        "prime", "primes", "l'assureur", "article L113-3 du Code des assurances",
        "articles/l113_3.html.j2", "les garanties de votre contrat", "résilier",
    ),
    Regime.MUTUELLE_INDIVIDUELLE: Vocabulary(
        "cotisation", "cotisations", "la mutuelle", "article L221-7 du Code de la mutualité",
        "articles/l221_7.html.j2", "vos garanties", "résilier",
    ),
    Regime.MUTUELLE_COLLECTIVE: Vocabulary(
        "cotisation", "cotisations", "la mutuelle", "article L221-8 du Code de la mutualité",
        "articles/l221_8.html.j2", "les garanties du contrat collectif", "résilier",
    ),
    Regime.PREVOYANCE_COLLECTIVE: Vocabulary(
        "cotisation", "cotisations", "l'institution de prévoyance",
        "article L932-9 du Code de la sécurité sociale", "articles/l932_9.html.j2",
        "les garanties du contrat collectif", "dénoncer",
    ),
    Regime.VIE: Vocabulary(
        "prime", "primes", "l'assureur", "article L132-20 du Code des assurances",
        "articles/l132_20.html.j2", "votre contrat", "résilier",
    ),
}


def vocabulary(regime: Regime) -> Vocabulary:
    return _VOCAB[Regime(regime)]


CHANNEL_LABELS = {
    Channel.LRE: "Lettre recommandée électronique",
    Channel.PAPER: "Lettre recommandée avec avis de réception",
    Channel.ERE: "Envoi recommandé électronique",
    Channel.EMAIL: "Courrier électronique",
}

KIND_TITLES = {
    LetterKind.REMINDER: "Rappel de paiement",
    LetterKind.FORMAL_NOTICE: "Mise en demeure",
    LetterKind.SUSPENSION_NOTICE: "Suspension des garanties",
    LetterKind.TERMINATION: "Résiliation du contrat",
    LetterKind.REINSTATEMENT: "Remise en vigueur du contrat",
    LetterKind.LITIGATION_SUMMARY: "Transmission au contentieux",
    LetterKind.PAYMENT_ACKNOWLEDGEMENT: "Accusé de réception de votre paiement",
}

DISPUTE_TITLES = {
    "dispute_acknowledgement": "Accusé de réception de votre réclamation",
    "dispute_answer": "Réponse à votre réclamation",
    "mediation_referral": "Information sur la médiation",
}

OUTCOME_LABELS = {
    "upheld": "Réclamation acceptée",
    "partially_upheld": "Réclamation partiellement acceptée",
    "rejected": "Réclamation rejetée",
}


def is_collective(ctx: LetterContext) -> bool:
    return Regime(ctx.regime) in COLLECTIVE


def letter_title(ctx: LetterContext) -> str:
    kind = LetterKind(ctx.kind)
    if kind is LetterKind.FORMAL_NOTICE and Regime(ctx.regime) is Regime.VIE:
        return "Mise en demeure — article L132-20"
    if kind is LetterKind.TERMINATION and Regime(ctx.regime) is Regime.VIE and ctx.life_outcome == "reduction":
        return "Réduction du contrat"
    return KIND_TITLES[kind]


def template_name(ctx: LetterContext) -> str:
    """One template per kind; the formal notice has a separate life-insurance template
    (L132-20 differs in substance: no suspension, no action for payment)."""
    kind = LetterKind(ctx.kind)
    if kind is LetterKind.FORMAL_NOTICE and Regime(ctx.regime) is Regime.VIE:
        return "formal_notice_life.html.j2"
    return f"{kind.value}.html.j2"
