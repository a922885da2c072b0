"""The supervised signal: a logistic regression over the embedding (and cue counts), trained on
labelled examples plus people's corrections, saved as arrays and a model card."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from triage.categorize.examples import LabelledExamples
from triage.config import Settings, defaults_of, params_from
from triage.errors import InvalidInputError, ModelNotFoundError
from triage.lexicon import MODELS_DIR, CueLexicon

_setting = defaults_of("categorize")

DEFAULT_CLASSIFIER_DIR = MODELS_DIR / "category-classifier"


def logistic_proba(logits: np.ndarray) -> np.ndarray:
    """Probabilities from a fitted ``LogisticRegression``'s decision values, as its
    ``predict_proba`` gives them: one column of logits is the second of two classes."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 1:
        positive = special.expit(logits[:, 0])
        return np.column_stack([1.0 - positive, positive])
    return special.softmax(logits, axis=1)


def rowwise(rows: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``rows @ matrix`` as a stack of one-row products. One product over many rows can round
    differently in the last bit than a row alone, and a ticket decided among thousands in a
    refresh must get the numbers it gets decided alone (``Categorizer.decide_many``)."""
    return np.matmul(rows[:, None, :], matrix)[:, 0]


@dataclass(frozen=True)
class ClassifierParams:
    """How the classifier is fitted (Settings ``categorize_correction_weight``,
    ``categorize_classifier_c``)."""

    correction_weight: float = _setting("correction_weight")
    classifier_c: float = _setting("classifier_c")

    @classmethod
    def from_settings(cls, settings: Settings) -> ClassifierParams:
        return params_from(cls, settings, "categorize")


@dataclass
class CategoryClassifier:
    """Multinomial logistic regression over standardised [embedding, log1p(cue counts)].

    Saved as ``weights.npz`` (arrays only, loaded with ``allow_pickle=False``) and ``card.json``.
    """

    classes: list[str]
    coef: np.ndarray  # (n_classes, n_features); (1, n_features) for two classes
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    embedding_dim: int
    cue_categories: list[str] = field(default_factory=list)  # empty: no cue features
    card: dict[str, Any] = field(default_factory=dict)
    # Trained on vectors centred on their product's mean (``domain``): the training products'
    # average mean, the centre of a product with no tickets yet. None: plain vectors.
    domain_prior: np.ndarray | None = None

    def check(self, vectors: np.ndarray) -> np.ndarray:
        """``vectors`` as float32 rows, when they have the dimension it was trained on."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.embedding_dim:
            raise InvalidInputError(
                f"The classifier was trained on {self.embedding_dim}-dim vectors, got "
                f"{vectors.shape}; retrain it for this embedding model (bench/categorize.py)."
            )
        return vectors

    def features(self, vectors: np.ndarray, cue_counts: np.ndarray | None) -> np.ndarray:
        vectors = self.check(vectors)
        if self.cue_categories:
            if cue_counts is None or cue_counts.shape != (len(vectors), len(self.cue_categories)):
                raise InvalidInputError(
                    f"The classifier needs cue counts for {self.cue_categories} per text."
                )
            vectors = np.hstack([vectors, np.log1p(cue_counts)])
        return (vectors - self.mean) / self.scale

    def predict_proba(
        self, vectors: np.ndarray, cue_counts: np.ndarray | None = None
    ) -> np.ndarray:
        """``(n, len(classes))`` probabilities, each row's the same however many rows come with
        it (``rowwise``)."""
        return logistic_proba(
            rowwise(self.features(vectors, cue_counts), self.coef.T) + self.intercept
        )

    def save(self, folder: str | Path = DEFAULT_CLASSIFIER_DIR) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "classes": np.array(self.classes, dtype=str),
            "coef": self.coef.astype(np.float64),
            "intercept": self.intercept.astype(np.float64),
            "mean": self.mean.astype(np.float64),
            "scale": self.scale.astype(np.float64),
            "cue_categories": np.array(self.cue_categories, dtype=str),
        }
        if self.domain_prior is not None:
            arrays["domain_prior"] = self.domain_prior.astype(np.float32)
        np.savez_compressed(folder / "weights.npz", **arrays)  # type: ignore[arg-type]
        card = {**self.card, "embedding_dim": self.embedding_dim, "format": "npz+json"}
        (folder / "card.json").write_text(
            json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path = DEFAULT_CLASSIFIER_DIR) -> CategoryClassifier:
        folder = Path(folder)
        try:
            card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
            with np.load(folder / "weights.npz", allow_pickle=False) as arrays:
                data = {name: arrays[name] for name in arrays.files}
        except FileNotFoundError as e:
            raise ModelNotFoundError(
                f"No category classifier in {folder}. Train one with `python -m bench.categorize`."
            ) from e
        return cls(
            classes=[str(c) for c in data["classes"]],
            coef=data["coef"],
            intercept=data["intercept"],
            mean=data["mean"],
            scale=data["scale"],
            embedding_dim=int(card["embedding_dim"]),
            cue_categories=[str(c) for c in data["cue_categories"]],
            card=card,
            domain_prior=data["domain_prior"].astype(np.float32)
            if "domain_prior" in data
            else None,
        )


def train_classifier(
    texts: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    params: ClassifierParams | None = None,
    corrections: LabelledExamples | None = None,
    cues: CueLexicon | None = None,
    card: Mapping[str, Any] | None = None,
    cue_counts: np.ndarray | None = None,
    domain_prior: np.ndarray | None = None,
) -> CategoryClassifier:
    """Fit on labelled examples plus human corrections (each counted ``correction_weight``
    times). With ``cues``, log1p cue counts per category are appended to each embedding
    (``cue_counts``: ``cues.counts`` of the texts then the corrections, when the caller has them
    already, as the out-of-fold training does). ``domain_prior``: the vectors are centred on their
    products' means (``domain.centre_groups``), and this is the prior it returned. Without
    ``params``, the Settings defaults."""
    from sklearn.linear_model import LogisticRegression

    params = params or ClassifierParams()
    correction_weight, c = params.correction_weight, params.classifier_c
    examples = LabelledExamples(list(texts), vectors, list(labels))
    weights = np.ones(len(examples))
    if corrections is not None and len(corrections):
        examples = examples + corrections
        weights = np.concatenate([weights, np.full(len(corrections), correction_weight)])
    if len(set(examples.labels)) < 2:
        raise InvalidInputError(
            "The classifier needs labelled examples of at least two categories."
        )

    cue_categories = cues.names if cues is not None else []
    features = examples.vectors.astype(np.float64)
    if cues is not None:
        cue_matrix = cue_counts if cue_counts is not None else cues.counts(examples.texts)
        features = np.hstack([features, np.log1p(cue_matrix)])
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((features - mean) / scale, examples.labels, sample_weight=weights)
    counts = Counter(examples.labels)
    return CategoryClassifier(
        classes=[str(label) for label in model.classes_],
        coef=model.coef_,
        intercept=model.intercept_,
        mean=mean,
        scale=scale,
        embedding_dim=examples.vectors.shape[1],
        cue_categories=cue_categories,
        domain_prior=domain_prior,
        card={
            "purpose": "Scores ui/data/model/expectation for one feedback text; one of the four "
            "signals triage.categorize combines, never the decision on its own.",
            "model": "sklearn LogisticRegression (multinomial), standardised features",
            "limitations": "English; trained on a few hundred hand-written tickets about five "
            "products, so retrain with corrections before trusting it on another domain.",
            "features": "embedding" + (" + log1p(cue counts)" if cues is not None else ""),
            "vectors": "centred on each product's mean (triage/categorize/domain.py)"
            if domain_prior is not None
            else "as embedded",
            "cue_lexicon": f"{cues.source} v{cues.version}" if cues is not None else None,
            "C": c,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_examples": len(texts),
            "corrections": len(corrections) if corrections is not None else 0,
            "correction_weight": correction_weight,
            "label_counts": dict(sorted(counts.items())),
            **dict(card or {}),
        },
    )
