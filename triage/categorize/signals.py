"""The four signals, each giving every category a score in [0, 1] (a signal's scores sum to at
most 1) and a sentence a person can check:

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
- ``classifier``: the supervised classifier's probabilities averaged over the issue's texts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from triage.categorize.examples import CATEGORIES, LabelledExamples
from triage.config import Settings, defaults_of, params_from
from triage.link import OutputSignals

_setting = defaults_of("categorize")

SIGNALS = ("cues", "examples", "outputs", "classifier")


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
    if not any(words for found in matches for name, words in found.items() if name in CATEGORIES):
        # Most tickets match no cue: skip the counters (a refresh scores thousands).
        return SignalScore({}, {}, {"matches": {}})
    phrases: dict[str, Counter[str]] = {name: Counter() for name in CATEGORIES}
    for found in matches:
        for name, words in found.items():
            if name in phrases:
                phrases[name].update(words)
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


def score_examples_many(
    groups: Sequence[np.ndarray], examples: LabelledExamples, *, k: int
) -> list[SignalScore]:
    """For each ticket (its rows of vectors), how the ``k`` labelled examples nearest each of
    its vectors are labelled, with one product and one sort for all of them: a refresh decides
    thousands of tickets."""
    sizes = [len(group) for group in groups]
    if not len(examples) or not sum(sizes):
        return [SignalScore({}, {}) for _ in groups]
    k = min(k, len(examples))
    dim = examples.vectors.shape[1]
    stacked = np.concatenate([np.asarray(g, dtype=np.float32).reshape(-1, dim) for g in groups])
    sims = stacked @ examples.vectors.T
    neighbours = top_k(sims, k)
    labels = np.array(examples.labels)[neighbours]  # rows x k
    weights = np.clip(np.take_along_axis(sims, neighbours, axis=1), 0.0, None)
    totals = weights.sum(axis=1)
    counted = totals > 0
    shares = np.zeros((len(stacked), len(CATEGORIES)))
    for c, name in enumerate(CATEGORIES):
        shares[counted, c] = (weights * (labels == name)).sum(axis=1)[counted] / totals[counted]
    firsts = np.cumsum([0, *sizes[:-1]])
    # Each ticket's best similarity to each example, its three nearest examples among those.
    spans = [(first, size) for first, size in zip(firsts, sizes, strict=True) if size]
    closest = np.array([sims[first : first + size].max(axis=0) for first, size in spans])
    nearest_of = iter(zip(top_k(closest, min(3, len(examples))), closest, strict=True))
    results = []
    for first, size in zip(firsts, sizes, strict=True):
        if not size:
            results.append(SignalScore({}, {}))
            continue
        rows = slice(first, first + size)
        scores = {name: float(shares[rows, c].sum()) / size for c, name in enumerate(CATEGORIES)}
        counts: Counter[str] = Counter(labels[rows][counted[rows]].ravel().tolist())
        nearest, best = next(nearest_of)
        data = {
            "k": k,
            "neighbour_labels": dict(sorted(counts.items())),
            "nearest": [
                {"text": examples.texts[i], "label": examples.labels[i], "similarity": float(s)}
                for i, s in zip(nearest, best[nearest], strict=True)
            ],
        }
        total = sum(counts.values())
        reasons = {
            name: f"resembles {counts[name]} labelled {name} examples"
            + (f" (of its {total} nearest)" if total else "")
            for name in CATEGORIES
            if counts[name]
        }
        results.append(SignalScore(scores, reasons, data))
    return results


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``(rows, k)``: each row's columns of the ``k`` highest scores, highest first, ties to the
    lower column, as a stable sort of the whole row would give them (the same neighbours from
    run to run), at the cost of a partial sort: a refresh scores thousands of rows against every
    labelled example. A row whose ``k``-th score is tied beyond the ``k`` kept is sorted
    whole."""
    n, m = scores.shape
    if k >= m or k <= 0 or not n:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    picked = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked.sort(axis=1)  # by column, so the stable sort below breaks ties by column
    values = np.take_along_axis(scores, picked, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    best = np.take_along_axis(picked, order, axis=1)
    lowest = np.take_along_axis(values, order[:, -1:], axis=1)
    tied = np.flatnonzero((scores >= lowest).sum(axis=1) > k)
    if len(tied):
        best[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    return best


def classifier_score(classes: Sequence[str], proba: np.ndarray) -> SignalScore:
    """The classifier signal of one ticket from its texts' rows of the classifier's
    probabilities (columns in ``classes`` order): their mean. The rows of many tickets go
    through the classifier at once (``Categorizer.signal_scores_many``)."""
    if not len(proba):
        return SignalScore({}, {})
    mean = proba.mean(axis=0)
    scores = {name: 0.0 for name in CATEGORIES}
    for name, p in zip(classes, mean, strict=True):
        scores[name] = float(p)
    reasons = {
        name: f"classifier gives {name} {p:.2f}"
        + (f" (averaged over {len(proba)} texts)" if len(proba) > 1 else "")
        for name, p in scores.items()
        if p > 0
    }
    return SignalScore(scores, reasons, {"probabilities": scores})


@dataclass(frozen=True)
class OutputThresholds:
    """How linked-output numbers become support for a category (Settings ``categorize_*``)."""

    # Linked confidence / eval median this far down traffic is "low".
    low_percentile: float = _setting("low_percentile")
    # Missing this much more often than in traffic counts for data.
    min_excess_missing: float = _setting("min_excess_missing")

    @classmethod
    def from_settings(cls, settings: Settings) -> OutputThresholds:
        return params_from(cls, settings, "categorize")


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
        if low > 0 and distribution is not None and distribution.linked_percentile is not None:
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
    # Healthy is a reading of the outputs' measurements. Outputs logged with none (no
    # confidence, no eval score, no sources: a chatbot's bare answers) were not seen to be
    # fine; they say nothing, rather than clear the model.
    measured = bool(parts) or data_score > 0 or concentration is not None
    healthy = max(0.0, 1.0 - max(model_score, data_score)) if measured else 0.0
    if healthy > 0:
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
