"""Triage of incoming complaints into the categories of DOMAIN.md §2.

An explainable classifier: TF-IDF over French words and word pairs, then a multinomial
logistic regression. The explanation of a prediction is the list of terms of the text
with the largest contribution (tf-idf value × the class coefficient) to the chosen class,
which an operator can read and challenge.

Training data: every ``data/triage/*.csv`` (columns ``category,subject,description``).
Operator corrections are recorded by the dispute activities (table
``triage_corrections``); ``precontentieux disputes triage export-corrections`` writes them
to ``data/triage/corrections-*.csv`` so the next training includes them.

Used only by activities and the CLI (scikit-learn is never imported by workflow code).
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from models.disputes import DisputeCategory, TermWeight, TriageResult

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "triage"
HELD_OUT_FRACTION = 0.25
SPLIT_SEED = 20261122

# Frequent French function words carry no category signal.
FRENCH_STOP_WORDS = frozenset(
    """
    a à au aux avec ce ces cet cette dans de des du elle en et eux il ils je j la le les leur
    leurs lui ma mais me même mes moi mon ne nos notre nous on ou où par pas pour qu que qui sa
    se ses son sur ta te tes toi ton tu un une vos votre vous c d l m n s t y été être avoir ai
    as avez avons ont est sont suis était étaient fait faire plus très tout tous toute toutes
    alors aussi bien car comme donc si sans sous depuis après avant encore déjà jamais rien
    cela ça celui celle ceux dont lors ni non oui puis quand quel quelle quels quelles
    merci madame monsieur bonjour cordialement svp
    """.split()
)


@dataclass(frozen=True)
class Example:
    text: str
    category: DisputeCategory


def complaint_text(subject: str, description: str) -> str:
    return f"{subject.strip()}. {description.strip()}"


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    return unicodedata.normalize("NFC", text)


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _tokenise(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if t not in FRENCH_STOP_WORDS and not t.isdigit()]


def load_examples(paths: Iterable[Path] | None = None) -> list[Example]:
    """Every labelled complaint from the CSV files (sorted paths: a stable order)."""
    files = sorted(paths) if paths is not None else sorted(DATA_DIR.glob("*.csv"))
    examples: list[Example] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                examples.append(
                    Example(
                        complaint_text(row["subject"], row.get("description") or ""),
                        DisputeCategory(row["category"].strip()),
                    )
                )
    return examples


def split_examples(
    examples: Sequence[Example], held_out: float = HELD_OUT_FRACTION, seed: int = SPLIT_SEED
) -> tuple[list[Example], list[Example]]:
    """A stratified train / held-out split, reproducible from the seed."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        list(examples),
        test_size=held_out,
        random_state=seed,
        stratify=[e.category.value for e in examples],
    )
    return train, test


class TriageModel:
    """TF-IDF + logistic regression, with per-prediction explanations."""

    def __init__(self, examples: Sequence[Example]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len({e.category for e in examples}) < 2:
            raise ValueError("training needs examples of at least two categories")
        self.vectorizer = TfidfVectorizer(
            preprocessor=_normalise,
            tokenizer=_tokenise,
            token_pattern=None,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
        )
        x = self.vectorizer.fit_transform([e.text for e in examples])
        self.classifier = LogisticRegression(C=20.0, max_iter=5000)
        self.classifier.fit(x, [e.category.value for e in examples])
        self.terms = self.vectorizer.get_feature_names_out()
        digest = hashlib.sha256()
        for e in examples:
            digest.update(f"{e.category.value}\t{e.text}\n".encode())
        self.version = f"tfidf-logreg-{len(examples)}-{digest.hexdigest()[:10]}"

    def predict(self, subject: str, description: str = "", *, top_k: int = 6) -> TriageResult:
        x = self.vectorizer.transform([complaint_text(subject, description)])
        probabilities = self.classifier.predict_proba(x)[0]
        classes = list(self.classifier.classes_)
        best = int(probabilities.argmax())
        category = DisputeCategory(classes[best])
        coef = self.classifier.coef_[best]
        row = x.tocoo()
        contributions = sorted(
            ((self.terms[j], float(v * coef[j])) for j, v in zip(row.col, row.data, strict=True)),
            key=lambda tw: tw[1],
            reverse=True,
        )
        top = [TermWeight(term=t, weight=round(w, 4)) for t, w in contributions[:top_k] if w > 0]
        return TriageResult(
            category=category,
            confidence=round(float(probabilities[best]), 4),
            top_terms=top,
            model_version=self.version,
            probabilities={c: round(float(p), 4) for c, p in zip(classes, probabilities, strict=True)},
        )

    def top_terms_per_category(self, k: int = 10) -> dict[str, list[str]]:
        """The global explanation: the most indicative terms of each category."""
        out: dict[str, list[str]] = {}
        for i, cls in enumerate(self.classifier.classes_):
            order = self.classifier.coef_[i].argsort()[::-1][:k]
            out[str(cls)] = [str(self.terms[j]) for j in order]
        return out


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    n_train: int
    n_test: int
    errors: list[tuple[str, str, str]]  # (text, expected, predicted)
    per_category: dict[str, float]


def evaluate(examples: Sequence[Example] | None = None) -> Evaluation:
    """Train on the training split, measure accuracy on the held-out split."""
    examples = list(examples) if examples is not None else load_examples()
    train, test = split_examples(examples)
    model = TriageModel(train)
    errors: list[tuple[str, str, str]] = []
    hits: dict[str, list[bool]] = {}
    for e in test:
        predicted = model.predict(e.text).category
        ok = predicted is e.category
        hits.setdefault(e.category.value, []).append(ok)
        if not ok:
            errors.append((e.text, e.category.value, predicted.value))
    correct = sum(ok for v in hits.values() for ok in v)
    return Evaluation(
        accuracy=correct / len(test),
        n_train=len(train),
        n_test=len(test),
        errors=errors,
        per_category={k: sum(v) / len(v) for k, v in sorted(hits.items())},
    )


@lru_cache(maxsize=1)
def default_model() -> TriageModel:
    """The production model: trained on every shipped example (and exported corrections)."""
    return TriageModel(load_examples())
