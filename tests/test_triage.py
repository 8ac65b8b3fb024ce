"""Triage: an explainable TF-IDF + logistic-regression classifier on a labelled French
dataset (data/triage/*.csv), evaluated on a held-out split."""

from __future__ import annotations

import csv
from collections import Counter

from temporalio.testing import ActivityEnvironment

from models.disputes import DisputeCategory, TriageRequest
from models.triage import (
    DATA_DIR,
    Example,
    TriageModel,
    evaluate,
    load_examples,
    split_examples,
)


def test_dataset_covers_every_category_with_enough_examples() -> None:
    examples = load_examples()
    counts = Counter(e.category for e in examples)
    assert len(examples) >= 300
    assert set(counts) == set(DisputeCategory)
    assert min(counts.values()) >= 30
    assert len({e.text for e in examples}) == len(examples)  # no duplicates


def test_held_out_accuracy() -> None:
    ev = evaluate()
    train, test = split_examples(load_examples())
    assert not {e.text for e in train} & {e.text for e in test}  # the held-out set is unseen
    assert (ev.n_train, ev.n_test) == (len(train), len(test))
    assert ev.n_test >= 75
    assert ev.accuracy >= 0.85, ev.errors
    # The named categories are recognised; "other" is a catch-all of unrelated topics
    # (data protection, sponsorship, governance…) and the hardest to learn.
    named = {k: v for k, v in ev.per_category.items() if k != "other"}
    assert min(named.values()) >= 0.75, ev.per_category
    assert ev.per_category["other"] >= 0.5, ev.per_category


def test_prediction_is_explained_by_its_top_terms() -> None:
    train, _ = split_examples(load_examples())
    model = TriageModel(train)
    result = model.predict(
        "Augmentation de ma cotisation",
        "Ma cotisation mensuelle augmente encore de 14 % cette année sans explication.",
    )
    assert result.category is DisputeCategory.PREMIUMS
    terms = [t.term for t in result.top_terms]
    assert "cotisation" in terms and all(t.weight > 0 for t in result.top_terms)
    assert result.top_terms == sorted(result.top_terms, key=lambda t: t.weight, reverse=True)
    assert abs(sum(result.probabilities.values()) - 1) < 1e-3
    assert result.confidence == max(result.probabilities.values())
    glossary = model.top_terms_per_category(5)
    assert any("résili" in term for term in glossary["termination"])


def test_operator_corrections_feed_retraining() -> None:
    base = load_examples()
    text = "Portail adhérent. Le portail refuse mon mot de passe depuis la mise à jour."
    # Corrections teach the model a new phrasing of a category.
    corrections = [
        Example(
            f"Portail adhérent {i}. Le portail ne m'affiche plus rien depuis la mise à jour.",
            DisputeCategory.SERVICE_QUALITY,
        )
        for i in range(5)
    ]
    retrained = TriageModel(base + corrections)
    assert retrained.version != TriageModel(base).version
    assert retrained.predict(text).category is DisputeCategory.SERVICE_QUALITY


def test_exported_corrections_file_is_loaded(tmp_path) -> None:
    path = tmp_path / "corrections-1.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["category", "subject", "description"])
        w.writerow(["termination", "Sortie du contrat", "Je veux partir"])
    examples = load_examples([*sorted(DATA_DIR.glob("*.csv")), path])
    assert Example("Sortie du contrat. Je veux partir", DisputeCategory.TERMINATION) in examples
    assert len(examples) == len(load_examples()) + 1


def test_triage_activity(tmp_path) -> None:
    from tests.test_dispute_helpers import make_activities

    acts, _ = make_activities(tmp_path)
    result = ActivityEnvironment().run(
        acts.triage,
        TriageRequest(
            dispute_id="T-1",
            subject="Résiliation non prise en compte",
            description="J'ai envoyé ma lettre de résiliation il y a deux mois et vous prélevez toujours.",
        ),
    )
    assert result.category is DisputeCategory.TERMINATION and result.model_version.startswith("tfidf-logreg-")
