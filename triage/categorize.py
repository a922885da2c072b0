"""Stage "categorize": is an issue a ui, data, model or expectation problem, and why.

Four signals each give every category a score in [0, 1] (a signal's scores sum to at most 1):

- ``cues``: cue phrases from a versioned lexicon (``models/cues-v1.json``) matched on lowercased
  lemmas; a category's score is its share of the matches, over at least ``cue_saturation``.
- ``examples``: the ``knn_k`` nearest labelled examples of each text (cosine), a similarity
  weighted vote, averaged over the issue's texts.
- ``outputs``: the linked model outputs (``triage.link.OutputSignals``). A version that carries
  far more of its model's complaints than its share of that model's traffic at the time
  (significant, and not just a handful), or outputs whose median confidence or eval score sits
  below ``low_percentile`` of traffic while their sources are fresh, point to ``model``; stale
  sources or missing input fields point to ``data`` (and take the blame for poor answers);
  healthy outputs split their support between ``ui`` and ``expectation``.
- ``classifier``: a logistic regression over the embedding (and cue counts) trained on labelled
  examples plus human corrections, its probabilities averaged over the issue's texts.

The decision is a readable weighted sum. With ``w_s`` the weight of signal ``s`` and ``W`` the
sum of the weights of the signals that had something to say (no linked outputs: no ``outputs``
signal), ``contribution[s][c] = w_s / W * score_s[c]`` and ``total[c] = sum_s contribution[s][c]``.
The category is the largest total, the runner-up the second, and the confidence is the winner's
share of all totals. Every signal adds one piece of evidence with a sentence a person can check.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from triage.config import get_settings
from triage.errors import InvalidInputError, ModelNotFoundError
from triage.link import OutputSignals

CATEGORIES = ("ui", "data", "model", "expectation")
SIGNALS = ("cues", "examples", "outputs", "classifier")

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_CUES = MODELS_DIR / "cues-v1.json"
DEFAULT_CLASSIFIER_DIR = MODELS_DIR / "category-classifier"
# The labelled examples the classifier was trained on, embedded, for the nearest-example signal.
EXAMPLES_FILE = "examples.npz"


# --- cue lexicons ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def lemma_nlp() -> Any:
    """The preprocess stage's pipeline, so cues see the same lemmas as unit keywords; failing
    that, a blank English pipeline with the lookup lemmatizer."""
    from triage.imports import without_deep_learning

    try:
        with without_deep_learning():
            from triage.preprocess import build_nlp
    except ImportError:
        pass
    else:
        return build_nlp()
    try:
        with without_deep_learning():
            import spacy
    except ImportError as e:
        raise ModelNotFoundError("spaCy is not installed. Run: pip install spacy==3.8.18") from e
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    try:
        nlp.initialize()
    except Exception as e:  # spaCy raises a plain ValueError when the tables are missing
        raise ModelNotFoundError(
            "spaCy's lookup lemmatizer has no tables. Run: pip install spacy-lookups-data==1.0.5"
        ) from e
    return nlp


# Lexicons match lemmas; these steps of the preprocess pipeline only mark sentences and split
# statements (no token's text or lemma changes), and they cost more than the rest, so matching
# skips them.
NOT_FOR_MATCHING = ("sentencizer", "triage_units")


def lemma_docs(texts: Iterable[str]) -> list[Any]:
    """The texts as every lexicon matches them: lowercased, through ``lemma_nlp``. Parse once to
    match several lexicons (``CueLexicon.match(texts, docs=...)``)."""
    nlp = lemma_nlp()
    skip = [name for name in NOT_FOR_MATCHING if name in nlp.pipe_names]
    return list(nlp.pipe((text.lower() for text in texts), disable=skip))


class CueLexicon:
    """Phrases per category, matched on lemmas of the lowercased text; the longest match wins.

    Also used for the severity lexicon of the rank stage (``weights`` per category).
    """

    def __init__(
        self,
        categories: Mapping[str, Sequence[str]],
        *,
        version: int = 1,
        weights: Mapping[str, float] | None = None,
        source: str = "",
    ) -> None:
        self.version = version
        self.categories = {name: list(phrases) for name, phrases in categories.items()}
        self.weights = dict(weights or {})
        self.source = source
        self._matcher: Any = None

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CUES) -> CueLexicon:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ModelNotFoundError(f"No lexicon at {path}; models/ ships cues-v1.json.") from e
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(raw.get("categories"), dict):
            raise InvalidInputError(f'{path} needs a "categories" object of phrase lists.')
        return cls(
            raw["categories"],
            version=int(raw.get("version", 1)),
            weights=raw.get("weights"),
            source=path.name,
        )

    @property
    def names(self) -> list[str]:
        return list(self.categories)

    def _build(self) -> Any:
        from spacy.matcher import PhraseMatcher

        nlp = lemma_nlp()
        matcher = PhraseMatcher(nlp.vocab, attr="LEMMA")
        for name, phrases in self.categories.items():
            for phrase in phrases:
                # One key per (category, phrase), so a phrase listed twice counts for both.
                matcher.add(f"{name}\t{phrase}", [nlp(phrase.lower())])
        return matcher

    def match(
        self, texts: Sequence[str], *, docs: Sequence[Any] | None = None
    ) -> list[dict[str, list[str]]]:
        """For each text, the phrases matched per category (in text order, repeats kept).
        ``docs``, when given, are the texts already parsed by ``lemma_docs``."""
        from spacy.util import filter_spans

        if self._matcher is None:
            self._matcher = self._build()
        if docs is None:
            docs = lemma_docs(texts)
        results = []
        for doc in docs:
            spans = self._matcher(doc, as_spans=True)
            found: dict[str, list[str]] = {}
            # A phrase in two categories yields two identical spans; filter_spans keeps one.
            kept = {(s.start, s.end) for s in filter_spans(spans)}
            for span in sorted(spans, key=lambda s: (s.start, s.label_)):
                if (span.start, span.end) in kept:
                    name, phrase = span.label_.split("\t", 1)
                    found.setdefault(name, []).append(phrase)
            results.append(found)
        return results

    def counts(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(names))`` match counts, one column per category."""
        matches = self.match(texts)
        return np.array(
            [[len(found.get(name, [])) for name in self.names] for found in matches],
            dtype=np.float32,
        ).reshape(len(texts), len(self.names))


# --- labelled examples -------------------------------------------------------------------------


@dataclass
class LabelledExamples:
    """Texts with a known category and their vectors (the labelled set and human corrections)."""

    texts: list[str]
    vectors: np.ndarray
    labels: list[str]

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if not (len(self.texts) == len(self.labels) == self.vectors.shape[0]):
            raise InvalidInputError(
                f"{len(self.texts)} texts, {len(self.labels)} labels and "
                f"{self.vectors.shape[0]} vectors: they must be the same length."
            )
        unknown = sorted(set(self.labels) - set(CATEGORIES))
        if unknown:
            raise InvalidInputError(f"Unknown categories {unknown}; use one of {CATEGORIES}.")

    def __len__(self) -> int:
        return len(self.labels)

    def __add__(self, other: LabelledExamples) -> LabelledExamples:
        return LabelledExamples(
            self.texts + other.texts,
            np.concatenate([self.vectors, other.vectors]),
            self.labels + other.labels,
        )

    def save(self, path: str | Path) -> Path:
        """One ``.npz`` of arrays (texts and labels as unicode arrays), no pickle."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            texts=np.array(self.texts, dtype=str),
            vectors=self.vectors,
            labels=np.array(self.labels, dtype=str),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> LabelledExamples:
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return cls(
                    [str(t) for t in arrays["texts"]],
                    arrays["vectors"],
                    [str(label) for label in arrays["labels"]],
                )
        except FileNotFoundError as e:
            raise ModelNotFoundError(
                f"No labelled examples at {path}. Write them with `python -m bench.categorize`."
            ) from e


# --- the supervised classifier -----------------------------------------------------------------


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

    def features(self, vectors: np.ndarray, cue_counts: np.ndarray | None) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.embedding_dim:
            raise InvalidInputError(
                f"The classifier was trained on {self.embedding_dim}-dim vectors, got "
                f"{vectors.shape}; retrain it for this embedding model (bench/categorize.py)."
            )
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
        """``(n, len(classes))`` probabilities."""
        logits = self.features(vectors, cue_counts) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:
            positive = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, folder: str | Path = DEFAULT_CLASSIFIER_DIR) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / "weights.npz",
            classes=np.array(self.classes, dtype=str),
            coef=self.coef.astype(np.float64),
            intercept=self.intercept.astype(np.float64),
            mean=self.mean.astype(np.float64),
            scale=self.scale.astype(np.float64),
            cue_categories=np.array(self.cue_categories, dtype=str),
        )
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
        )


def train_classifier(
    texts: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str],
    *,
    corrections: LabelledExamples | None = None,
    cues: CueLexicon | None = None,
    correction_weight: float | None = None,
    c: float | None = None,
    card: Mapping[str, Any] | None = None,
) -> CategoryClassifier:
    """Fit on labelled examples plus human corrections (each counted ``correction_weight``
    times). With ``cues``, log1p cue counts per category are appended to each embedding."""
    from sklearn.linear_model import LogisticRegression

    settings = get_settings()
    correction_weight = (
        settings.categorize_correction_weight if correction_weight is None else correction_weight
    )
    c = settings.categorize_classifier_c if c is None else c
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
        features = np.hstack([features, np.log1p(cues.counts(examples.texts))])
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
        card={
            "purpose": "Scores ui/data/model/expectation for one feedback text; one of the four "
            "signals triage.categorize combines, never the decision on its own.",
            "model": "sklearn LogisticRegression (multinomial), standardised features",
            "limitations": "English; trained on a few hundred hand-written tickets about five "
            "products, so retrain with corrections before trusting it on another domain.",
            "features": "embedding" + (" + log1p(cue counts)" if cues is not None else ""),
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


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    reason: str  # one sentence a person can check
    signal: str  # cues, examples, outputs or classifier
    category: str  # the category this evidence supports
    contribution: float  # what it added to that category's total
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "signal": self.signal,
            "category": self.category,
            "contribution": self.contribution,
            "data": self.data,
        }


@dataclass(frozen=True)
class CategoryDecision:
    category: str
    confidence: float
    runner_up: str | None
    evidence: list[Evidence]  # strongest support for the decided category first
    contributions: dict[str, dict[str, float]]  # signal -> category -> share of the total
    totals: dict[str, float]


@dataclass(frozen=True)
class SignalScore:
    scores: dict[str, float]
    reasons: dict[str, str]  # category -> sentence, for the categories this signal supports
    data: dict[str, Any] = field(default_factory=dict)


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ordinal(share: float) -> str:
    n = round(100 * share)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _days(days: float) -> str:
    return f"{days:.0f} day{'' if round(days) == 1 else 's'}" if days >= 1 else "under a day"


def score_cues(matches: Sequence[Mapping[str, list[str]]], *, saturation: float) -> SignalScore:
    phrases = {name: Counter() for name in CATEGORIES}
    for found in matches:
        for name, hits in found.items():
            if name in phrases:
                phrases[name].update(hits)
    hits = {name: sum(counter.values()) for name, counter in phrases.items()}
    total = sum(hits.values())
    if not total:
        return SignalScore({}, {}, {"matches": {}})
    scores = {name: hits[name] / max(total, saturation) for name in CATEGORIES}
    reasons = {
        name: "cue words: " + ", ".join(phrase for phrase, _ in phrases[name].most_common(6))
        for name in CATEGORIES
        if hits[name]
    }
    data = {"matches": {n: dict(c.most_common()) for n, c in phrases.items() if c}}
    return SignalScore(scores, reasons, data)


def score_examples(vectors: np.ndarray, examples: LabelledExamples, *, k: int) -> SignalScore:
    if not len(examples) or not len(vectors):
        return SignalScore({}, {})
    k = min(k, len(examples))
    sims = np.asarray(vectors, dtype=np.float32) @ examples.vectors.T
    # argsort on (-sim, index) keeps the neighbours the same from run to run on ties.
    neighbours = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    labels = np.array(examples.labels)
    scores = dict.fromkeys(CATEGORIES, 0.0)
    counts: Counter[str] = Counter()
    for row, idx in enumerate(neighbours):
        weights = np.clip(sims[row, idx], 0.0, None)
        if weights.sum() <= 0:
            continue
        for name in CATEGORIES:
            scores[name] += float(weights[labels[idx] == name].sum() / weights.sum())
        counts.update(labels[idx].tolist())
    scores = {name: value / len(vectors) for name, value in scores.items()}
    nearest = np.argsort(-sims.max(axis=0), kind="stable")[:3]
    data = {
        "k": k,
        "neighbour_labels": dict(sorted(counts.items())),
        "nearest": [
            {"text": examples.texts[i], "label": examples.labels[i], "similarity": float(s)}
            for i, s in zip(nearest, sims.max(axis=0)[nearest], strict=True)
        ],
    }
    total = sum(counts.values())
    reasons = {
        name: f"resembles {counts[name]} labelled {name} examples"
        + (f" (of its {total} nearest)" if total else "")
        for name in CATEGORIES
        if counts[name]
    }
    return SignalScore(scores, reasons, data)


def score_classifier(
    classifier: CategoryClassifier, vectors: np.ndarray, cue_counts: np.ndarray | None
) -> SignalScore:
    if not len(vectors):
        return SignalScore({}, {})
    proba = classifier.predict_proba(vectors, cue_counts).mean(axis=0)
    scores = {name: 0.0 for name in CATEGORIES}
    for name, p in zip(classifier.classes, proba, strict=True):
        scores[name] = float(p)
    reasons = {
        name: f"classifier gives {name} {p:.2f}"
        + (f" (averaged over {len(vectors)} texts)" if len(vectors) > 1 else "")
        for name, p in scores.items()
        if p > 0
    }
    return SignalScore(scores, reasons, {"probabilities": scores})


@dataclass(frozen=True)
class OutputThresholds:
    """How linked-output numbers become support for a category (Settings ``categorize_*``)."""

    low_percentile: float  # linked confidence / eval median this far down traffic is "low"
    min_excess_missing: float  # missing this much more often than in traffic counts for data

    @classmethod
    def from_settings(cls) -> OutputThresholds:
        settings = get_settings()
        return cls(
            low_percentile=settings.categorize_low_percentile,
            min_excess_missing=settings.categorize_min_excess_missing,
        )


def _lowness(distribution: Any, low_percentile: float) -> float:
    """1 when the linked median is at the bottom of traffic, 0 from ``low_percentile`` up."""
    if distribution is None or distribution.linked_percentile is None:
        return 0.0
    return max(0.0, 1.0 - distribution.linked_percentile / low_percentile)


def score_outputs(signals: OutputSignals, thresholds: OutputThresholds) -> SignalScore:
    """Support per category from what the linked outputs look like next to traffic."""
    if signals.n_linked == 0:
        return SignalScore({}, {})
    reasons: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    data: dict[str, Any] = {"linked_outputs": signals.n_linked, "traffic": signals.n_traffic}

    # --- data: stale sources, missing fields
    stale = 0.0
    freshness = signals.freshness
    if freshness is not None and freshness.stale_share and freshness.stale_sources:
        stale = freshness.stale_share
        worst = freshness.stale_sources[:2]
        details = "; ".join(
            f"{age.source} was {_days(age.age_days)} old"
            + (
                f", usually {_days(age.typical_age_days)}"
                if age.typical_age_days is not None
                else ""
            )
            for age in worst
        )
        share = f"{_pct(stale)} of linked outputs cite a stale source"
        if freshness.traffic_stale_share is not None:
            share += f", vs {_pct(freshness.traffic_stale_share)} of traffic"
        reasons["data"].append(
            f"sources as old as {min(a.as_of for a in worst).isoformat()} ({details}); {share}"
        )
        data["freshness"] = {
            "stale_sources": [
                {
                    "source": age.source,
                    "as_of": age.as_of.isoformat(),
                    "age_days": round(age.age_days, 1),
                    "typical_age_days": age.typical_age_days,
                }
                for age in freshness.stale_sources
            ],
            "median_age_days": freshness.median_age_days,
            "stale_share": stale,
            "traffic_stale_share": freshness.traffic_stale_share,
        }
    missing = 0.0
    for item in signals.missing:
        # An absent eval score or version says nothing about the data behind the answer.
        if item.field in ("eval_score", "model_version", "confidence"):
            continue
        excess = item.linked_share - item.traffic_share
        if excess >= thresholds.min_excess_missing:
            missing = max(missing, excess)
            what = (
                f"input lacked {item.field.removeprefix('input.')}"
                if item.field.startswith("input.")
                else f"{item.field} missing"
            )
            reasons["data"].append(
                f"{what} in {_pct(item.linked_share)} of linked outputs "
                f"vs {_pct(item.traffic_share)} of traffic"
            )
    data_score = max(stale, missing)

    # --- model: a version far above its traffic share, low confidence or eval scores
    concentration = signals.version_concentration
    version = 0.0
    if concentration is not None:
        version = 1.0
        model = concentration.within
        of_model = round(concentration.linked_count / concentration.linked_share)
        linked = "linked outputs" if of_model == signals.n_linked else f"linked {model} outputs"
        reasons["model"].append(
            f"{_pct(concentration.linked_share)} of {linked} come from {concentration.value}, "
            f"which served {_pct(concentration.traffic_share)} of {model} traffic "
            f"({_fmt_p(concentration.p_value)})"
        )
        data["concentration"] = {
            "model": model,
            "version": concentration.value,
            "linked_count": concentration.linked_count,
            "linked_share": concentration.linked_share,
            "traffic_share": concentration.traffic_share,
            "lift": concentration.lift,
            "p_value": concentration.p_value,
        }
    quality = 0.0
    for distribution, label in ((signals.confidence, "confidence"), (signals.eval_score, "eval")):
        low = _lowness(distribution, thresholds.low_percentile)
        if low > 0:
            quality = max(quality, low)
            reasons["model"].append(
                f"linked outputs' median {label} score {distribution.linked_median:.2f} vs "
                f"{distribution.traffic_median:.2f} across traffic (lower than "
                f"{_pct(1 - distribution.linked_percentile)} of it)"
            )
        if distribution is not None and distribution.linked_median is not None:
            data[label] = {
                "linked_median": distribution.linked_median,
                "traffic_median": distribution.traffic_median,
                "linked_percentile": distribution.linked_percentile,
                "p_lower": distribution.p_lower,
            }
    # Poor answers from stale sources are the data's fault; only what is left is the model's.
    model_score = max(version, quality * (1.0 - stale))
    if stale and quality and not version:
        reasons["model"] = []

    # --- ui / expectation: outputs that look fine
    healthy = max(0.0, 1.0 - max(model_score, data_score))
    if healthy > 0:
        parts = []
        for distribution, label in (
            (signals.confidence, "confidence"),
            (signals.eval_score, "eval score"),
        ):
            if distribution is not None and distribution.linked_median is not None:
                part = f"{label} {distribution.linked_median:.2f}"
                if distribution.linked_percentile is not None:
                    part += f" ({_ordinal(distribution.linked_percentile)} percentile of traffic)"
                parts.append(part)
        if freshness is not None and freshness.linked_with_sources and not stale:
            parts.append("sources fresh")
        state = "look healthy" if healthy == 1.0 else "look mostly healthy"
        sentence = f"linked outputs {state}" + (f": {', '.join(parts)}" if parts else "")
        reasons["ui"].append(sentence)
        reasons["expectation"].append(sentence)

    scores = {
        "model": model_score,
        "data": data_score,
        "ui": healthy / 2,
        "expectation": healthy / 2,
    }
    # One signal's support sums to at most 1, like the other signals'.
    mass = sum(scores.values())
    if mass > 1:
        scores = {name: value / mass for name, value in scores.items()}
    return SignalScore(
        scores, {name: "; ".join(r) for name, r in reasons.items() if r and scores[name]}, data
    )


class Categorizer:
    """Decides one issue's category from its texts, their vectors and its linked outputs."""

    def __init__(
        self,
        cues: CueLexicon,
        examples: LabelledExamples | None = None,
        classifier: CategoryClassifier | None = None,
        weights: Mapping[str, float] | None = None,
        *,
        knn_k: int | None = None,
        cue_saturation: float | None = None,
        thresholds: OutputThresholds | None = None,
    ) -> None:
        settings = get_settings()
        self.cues = cues
        self.examples = examples
        self.classifier = classifier
        self.weights = dict(weights) if weights is not None else default_weights()
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise InvalidInputError(f"Unknown signals {sorted(unknown)}; use {SIGNALS}.")
        self.knn_k = settings.categorize_knn_k if knn_k is None else knn_k
        self.cue_saturation = (
            settings.categorize_cue_saturation if cue_saturation is None else cue_saturation
        )
        self.thresholds = thresholds or OutputThresholds.from_settings()

    def signal_scores(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        signals: OutputSignals | None,
        *,
        docs: Sequence[Any] | None = None,
    ) -> dict[str, SignalScore]:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        matches = self.cues.match(texts, docs=docs)
        scored = {"cues": score_cues(matches, saturation=self.cue_saturation)}
        if self.examples is not None:
            scored["examples"] = score_examples(vectors, self.examples, k=self.knn_k)
        if signals is not None:
            scored["outputs"] = score_outputs(signals, self.thresholds)
        if self.classifier is not None:
            cue_counts = None
            if self.classifier.cue_categories:
                cue_counts = np.array(
                    [[len(m.get(n, [])) for n in self.classifier.cue_categories] for m in matches],
                    dtype=np.float32,
                ).reshape(len(texts), len(self.classifier.cue_categories))
            scored["classifier"] = score_classifier(self.classifier, vectors, cue_counts)
        return scored

    def decide(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        signals: OutputSignals | None = None,
        *,
        docs: Sequence[Any] | None = None,
    ) -> CategoryDecision:
        """``docs``: the texts parsed by ``lemma_docs``, when the caller parsed them already."""
        if not texts:
            raise InvalidInputError("An issue needs at least one text to be categorised.")
        scored = self.signal_scores(texts, vectors, signals, docs=docs)
        return combine(scored, self.weights)


def combine(scored: Mapping[str, SignalScore], weights: Mapping[str, float]) -> CategoryDecision:
    """The weighted sum described in the module docstring, with evidence."""
    active = {s: score for s, score in scored.items() if score.scores and weights.get(s, 0) > 0}
    weight_sum = sum(weights[s] for s in active)
    contributions = {
        s: {name: weights[s] / weight_sum * score.scores.get(name, 0.0) for name in CATEGORIES}
        for s, score in active.items()
    }
    totals = {name: sum(c[name] for c in contributions.values()) for name in CATEGORIES}
    # Ties go to the earlier category in CATEGORIES, so the same issue always gets one answer.
    ranked = sorted(CATEGORIES, key=lambda name: (-totals[name], CATEGORIES.index(name)))
    mass = sum(totals.values())
    if mass <= 0:
        # Nothing to go on (no cue, no examples, no outputs): say so rather than guess loudly.
        return CategoryDecision(
            category=ranked[0],
            confidence=0.0,
            runner_up=None,
            evidence=[Evidence("no signal had anything to say", "none", ranked[0], 0.0)],
            contributions=contributions,
            totals=totals,
        )
    category, runner_up = ranked[0], ranked[1]
    evidence = []
    for s, score in active.items():
        for name, reason in score.reasons.items():
            if contributions[s][name] > 0:
                evidence.append(
                    Evidence(
                        reason=reason,
                        signal=s,
                        category=name,
                        contribution=round(contributions[s][name], 4),
                        data=score.data,
                    )
                )
    # The decided category's support first, strongest first; then what argues for the others.
    evidence.sort(key=lambda e: (e.category != category, -e.contribution, e.signal, e.category))
    return CategoryDecision(
        category=category,
        confidence=round(totals[category] / mass, 4),
        runner_up=runner_up if totals[runner_up] > 0 else None,
        evidence=evidence,
        contributions={s: {n: round(v, 4) for n, v in c.items()} for s, c in contributions.items()},
        totals={name: round(value, 4) for name, value in totals.items()},
    )


def load_categorizer(*, settings: Any = None) -> Categorizer:
    """The shipped categorizer: the cue lexicon, and the classifier and its labelled examples
    from the classifier folder when they are there (Settings ``categorize_*``)."""
    settings = settings or get_settings()
    cues = CueLexicon.load(settings.categorize_cues_path or DEFAULT_CUES)
    folder = Path(settings.categorize_classifier_dir or DEFAULT_CLASSIFIER_DIR)
    classifier = CategoryClassifier.load(folder) if (folder / "weights.npz").exists() else None
    examples_file = folder / EXAMPLES_FILE
    examples = LabelledExamples.load(examples_file) if examples_file.exists() else None
    return Categorizer(cues, examples, classifier)


def default_weights() -> dict[str, float]:
    settings = get_settings()
    return {
        "cues": settings.categorize_weight_cues,
        "examples": settings.categorize_weight_examples,
        "outputs": settings.categorize_weight_outputs,
        "classifier": settings.categorize_weight_classifier,
    }


# --- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledIssue:
    """One issue with its true category, for ``evaluate``."""

    texts: list[str]
    vectors: np.ndarray
    label: str
    signals: OutputSignals | None = None
    key: str = ""  # e.g. the fixture's external_id, to name the items that were missed


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: truth)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = [name for name in CATEGORIES if name in set(y_true) | set(y_pred)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n": len(y_true),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "accuracy": float(np.mean(np.array(y_true) == np.array(y_pred))) if y_true else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def evaluate(categorizer: Categorizer, issues: Sequence[LabelledIssue]) -> dict[str, Any]:
    """Decide every issue and score the decisions; ``errors`` lists the misses."""
    decisions = [categorizer.decide(i.texts, i.vectors, i.signals) for i in issues]
    metrics = classification_metrics([i.label for i in issues], [d.category for d in decisions])
    metrics["errors"] = [
        {
            "key": issue.key,
            "text": " / ".join(issue.texts)[:200],
            "label": issue.label,
            "predicted": decision.category,
            "confidence": decision.confidence,
            "totals": decision.totals,
            "reasons": [f"[{e.signal}→{e.category}] {e.reason}" for e in decision.evidence[:4]],
        }
        for issue, decision in zip(issues, decisions, strict=True)
        if decision.category != issue.label
    ]
    return metrics
