"""The decision: a readable weighted sum of the signals, with evidence.

With ``w_s`` the weight of signal ``s`` and ``W`` the sum of the weights of the signals that had
something to say (no linked outputs: no ``outputs`` signal),
``contribution[s][c] = w_s / W * score_s[c]`` and ``total[c] = sum_s contribution[s][c]``.
The category is the largest total, the runner-up the second, and the confidence is the winner's
share of all totals. Every signal adds one piece of evidence with a sentence a person can check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triage.categorize.classifier import DEFAULT_CLASSIFIER_DIR, CategoryClassifier
from triage.categorize.examples import CATEGORIES, EXAMPLES_FILE, LabelledExamples
from triage.categorize.signals import (
    SIGNALS,
    OutputThresholds,
    SignalScore,
    score_classifier,
    score_cues,
    score_examples,
    score_outputs,
)
from triage.config import Settings
from triage.errors import InvalidInputError
from triage.lexicon import MODELS_DIR, CueLexicon
from triage.link import OutputSignals

DEFAULT_CUES = MODELS_DIR / "cues-v1.json"


def _setting(name: str) -> Any:
    # The dataclass defaults are the Settings defaults, so each knob has one home.
    return Settings.model_fields[f"categorize_{name}"].default


def default_weights(settings: Settings | None = None) -> dict[str, float]:
    """Each signal's weight (Settings ``categorize_weight_*``); without ``settings``, their
    defaults."""
    if settings is None:
        return {signal: _setting(f"weight_{signal}") for signal in SIGNALS}
    return {signal: getattr(settings, f"categorize_weight_{signal}") for signal in SIGNALS}


@dataclass(frozen=True)
class CategorizeParams:
    """How the signals are read and weighed (Settings ``categorize_*``)."""

    weights: dict[str, float] = field(default_factory=default_weights)
    knn_k: int = _setting("knn_k")
    cue_saturation: float = _setting("cue_saturation")
    thresholds: OutputThresholds = field(default_factory=OutputThresholds)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise InvalidInputError(f"Unknown signals {sorted(unknown)}; use {SIGNALS}.")

    @classmethod
    def from_settings(cls, settings: Settings) -> CategorizeParams:
        return cls(
            weights=default_weights(settings),
            knn_k=settings.categorize_knn_k,
            cue_saturation=settings.categorize_cue_saturation,
            thresholds=OutputThresholds.from_settings(settings),
        )


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


class Categorizer:
    """Decides one issue's category from its texts, their vectors and its linked outputs.
    Without ``params``, the Settings defaults."""

    def __init__(
        self,
        cues: CueLexicon,
        examples: LabelledExamples | None = None,
        classifier: CategoryClassifier | None = None,
        *,
        params: CategorizeParams | None = None,
    ) -> None:
        self.cues = cues
        self.examples = examples
        self.classifier = classifier
        self.params = params or CategorizeParams()

    @property
    def weights(self) -> dict[str, float]:
        return self.params.weights

    @property
    def knn_k(self) -> int:
        return self.params.knn_k

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
        scored = {"cues": score_cues(matches, saturation=self.params.cue_saturation)}
        if self.examples is not None:
            scored["examples"] = score_examples(vectors, self.examples, k=self.params.knn_k)
        if signals is not None:
            scored["outputs"] = score_outputs(signals, self.params.thresholds)
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
        return combine(scored, self.params.weights)


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


def load_categorizer(*, settings: Settings) -> Categorizer:
    """The shipped categorizer: the cue lexicon, and the classifier and its labelled examples
    from the classifier folder when they are there (Settings ``categorize_*``)."""
    cues = CueLexicon.load(settings.categorize_cues_path or DEFAULT_CUES)
    folder = Path(settings.categorize_classifier_dir or DEFAULT_CLASSIFIER_DIR)
    classifier = CategoryClassifier.load(folder) if (folder / "weights.npz").exists() else None
    examples_file = folder / EXAMPLES_FILE
    examples = LabelledExamples.load(examples_file) if examples_file.exists() else None
    return Categorizer(cues, examples, classifier, params=CategorizeParams.from_settings(settings))
