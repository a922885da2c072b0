"""The decision: the learned combiner (``combiner``) when the classifier folder has one, else a
readable weighted sum of the signals, with evidence.

Learned: the combiner's probabilities decide; each signal's evidence carries what it added to the
decided category's logit next to an average ticket, with the signal's reason sentences. The
fallback, for classifier folders trained before the combiner existed:

With ``w_s`` the weight of signal ``s`` and ``W`` the sum of the weights of the signals that had
something to say (no linked outputs: no ``outputs`` signal),
``contribution[s][c] = w_s / W * score_s[c]`` and ``total[c] = sum_s contribution[s][c]``.
The category is the largest total, the runner-up the second, and the confidence is the winner's
share of all totals. Every signal adds one piece of evidence with a sentence a person can check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triage.categorize.classifier import DEFAULT_CLASSIFIER_DIR, CategoryClassifier
from triage.categorize.combiner import COMBINER_FILE, LearnedCombiner, feature_vector
from triage.categorize.context import TicketContext
from triage.categorize.examples import CATEGORIES, EXAMPLES_FILE, LabelledExamples
from triage.categorize.signals import (
    SIGNALS,
    OutputThresholds,
    SignalScore,
    score_classifier,
    score_cues,
    score_examples,
    score_examples_many,
    score_outputs,
)
from triage.categorize.words import WORDS_FILE, WordClassifier, score_words, score_words_many
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


def ranked(scores: Mapping[str, float]) -> list[str]:
    """``CATEGORIES`` from the highest score down; ties go to the earlier category, so the same
    scores always give one answer."""
    return sorted(CATEGORIES, key=lambda name: (-scores.get(name, 0.0), CATEGORIES.index(name)))


@dataclass(frozen=True)
class CategoryDecision:
    category: str
    confidence: float
    runner_up: str | None
    evidence: list[Evidence]  # strongest support for the decided category first
    contributions: dict[str, dict[str, float]]  # signal -> category -> share of the total
    totals: dict[str, float]
    probabilities: dict[str, float] = field(default_factory=dict)  # category -> probability


class Categorizer:
    """Decides one ticket's (or issue's) category from its texts, their vectors, its linked
    outputs and their context. With a ``combiner`` (and the classifier and examples it was
    fitted on) the learned combination decides; else the weighted sum. Without ``params``, the
    Settings defaults."""

    def __init__(
        self,
        cues: CueLexicon,
        examples: LabelledExamples | None = None,
        classifier: CategoryClassifier | None = None,
        *,
        params: CategorizeParams | None = None,
        combiner: LearnedCombiner | None = None,
        words: WordClassifier | None = None,
    ) -> None:
        self.cues = cues
        self.examples = examples
        self.classifier = classifier
        self.params = params or CategorizeParams()
        self.combiner = combiner
        self.words = words
        # What it was loaded from (``load_categorizer``); None: unknown, so a refresh decides
        # every ticket again rather than trust a decision stored by another categorizer.
        self.fingerprint: str | None = None

    @property
    def learned(self) -> bool:
        # The combiner's features include the classifier's and the examples' scores.
        return (
            self.combiner is not None
            and self.classifier is not None
            and (self.examples is not None)
        )

    @property
    def domain_prior(self) -> np.ndarray | None:
        """The centre of a product with no tickets yet, when the classifier was trained on
        vectors centred on their product's mean (``domain``); None: it reads plain vectors."""
        return self.classifier.domain_prior if self.classifier is not None else None

    @property
    def neighbour_weight(self) -> float:
        """How much a ticket's nearest tickets' own probabilities weigh in its category
        (``neighbours``): the learned combiner's, 0 without one."""
        return self.combiner.neighbour_weight if self.learned and self.combiner else 0.0

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
        words: SignalScore | None = None,
        examples: SignalScore | None = None,
    ) -> dict[str, SignalScore]:
        """Every signal's score; ``words`` and ``examples``: those signals already scored for
        these texts (``words_scores``, ``examples_scores``: many tickets at once)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        matches = self.cues.match(texts, docs=docs)
        scored = {"cues": score_cues(matches, saturation=self.params.cue_saturation)}
        if examples is not None:
            scored["examples"] = examples
        elif self.examples is not None:
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
        if words is not None:
            scored["words"] = words
        elif self.words is not None:
            scored["words"] = score_words(self.words, texts)
        return scored

    def words_scores(self, tickets: Sequence[Sequence[str]]) -> list[SignalScore | None]:
        """The words signal of each ticket (its texts), in one pass; None without a word
        model."""
        if self.words is None or not tickets:
            return [None] * len(tickets)
        return list(score_words_many(self.words, tickets))

    def examples_scores(self, tickets: Sequence[np.ndarray]) -> list[SignalScore | None]:
        """The nearest-examples signal of each ticket (its vectors), in one pass; None without
        labelled examples."""
        if self.examples is None or not tickets:
            return [None] * len(tickets)
        return list(score_examples_many(tickets, self.examples, k=self.params.knn_k))

    def decide(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        signals: OutputSignals | None = None,
        *,
        docs: Sequence[Any] | None = None,
        context: TicketContext | None = None,
        words: SignalScore | None = None,
        examples: SignalScore | None = None,
    ) -> CategoryDecision:
        """``docs``: the texts parsed by ``lemma_docs``, when the caller parsed them already;
        ``context``: the ticket's (``context.ticket_contexts``), read by the learned combiner;
        ``words``, ``examples``: those signals, when the caller scored many tickets at once."""
        if not texts:
            raise InvalidInputError("An issue needs at least one text to be categorised.")
        scored = self.signal_scores(
            texts, vectors, signals, docs=docs, words=words, examples=examples
        )
        if self.learned:
            assert self.combiner is not None
            return decide_learned(self.combiner, scored, context or TicketContext())
        return combine(scored, self.params.weights)


def _context_reason(group: str, context: TicketContext) -> str:
    if group == "reaction":
        if context.minutes_after_output is None:
            return "not linked to an answer it could react to"
        return f"written {context.minutes_after_output:.0f} minutes after the answer it is about"
    if not context.linked:
        return "no linked output to judge"
    parts = []
    if context.complaint_share is not None and context.traffic_share is not None:
        parts.append(
            f"{context.model} {context.version} carries {100 * context.complaint_share:.0f}% of "
            f"that model's other linked complaints vs {100 * context.traffic_share:.0f}% of its "
            "traffic"
        )
    parts.append(
        f"linked confidence lower than {100 * (1 - context.low_confidence):.0f}% of traffic"
    )
    if context.stale_share:
        parts.append(f"{100 * context.stale_share:.0f}% of its sources stale")
    return "; ".join(parts)


def decide_learned(
    combiner: LearnedCombiner, scored: Mapping[str, SignalScore], context: TicketContext
) -> CategoryDecision:
    """The combiner's decision, with one piece of evidence per signal it weighs."""
    full = feature_vector(scored, context)
    proba = combiner.predict_proba(full)[0]
    probabilities = {name: 0.0 for name in CATEGORIES}
    for name, p in zip(combiner.classes, proba, strict=True):
        probabilities[name] = round(float(p), 4)
    category, runner_up = ranked(probabilities)[:2]
    every = combiner.all_contributions(full)
    contributions = {name: every.get(name, {}) for name in CATEGORIES}
    evidence = []
    for group, value in contributions[category].items():
        score = scored.get(group)
        if score is not None and score.scores:
            reason = score.reasons.get(category)
            if reason is None:
                # Say what the signal pointed to instead, so a negative weight reads right.
                best = max(score.scores, key=lambda n: score.scores[n])
                reason = f"points to {best}: {score.reasons.get(best, 'no sentence')}"
            data = score.data
        elif group in ("context", "reaction"):
            reason, data = _context_reason(group, context), {}
        else:
            reason, data = f"no {group} signal for this text", {}
        evidence.append(Evidence(reason, group, category, round(value, 4), data))
    evidence.sort(key=lambda e: -e.contribution)
    by_signal: dict[str, dict[str, float]] = {}
    for name, per_group in contributions.items():
        for group, value in per_group.items():
            by_signal.setdefault(group, {})[name] = round(value, 4)
    return CategoryDecision(
        category=category,
        confidence=probabilities[category],
        runner_up=runner_up,
        evidence=evidence,
        contributions=by_signal,
        totals=probabilities,
        probabilities=probabilities,
    )


def combine(scored: Mapping[str, SignalScore], weights: Mapping[str, float]) -> CategoryDecision:
    """The weighted sum described in the module docstring, with evidence."""
    active = {s: score for s, score in scored.items() if score.scores and weights.get(s, 0) > 0}
    weight_sum = sum(weights[s] for s in active)
    contributions = {
        s: {name: weights[s] / weight_sum * score.scores.get(name, 0.0) for name in CATEGORIES}
        for s, score in active.items()
    }
    totals = {name: sum(c[name] for c in contributions.values()) for name in CATEGORIES}
    order = ranked(totals)
    mass = sum(totals.values())
    if mass <= 0:
        # Nothing to go on (no cue, no examples, no outputs): say so rather than guess loudly.
        return CategoryDecision(
            category=order[0],
            confidence=0.0,
            runner_up=None,
            evidence=[Evidence("no signal had anything to say", "none", order[0], 0.0)],
            contributions=contributions,
            totals=totals,
            probabilities={name: 1 / len(CATEGORIES) for name in CATEGORIES},
        )
    category, runner_up = order[0], order[1]
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
        probabilities={name: round(value / mass, 4) for name, value in totals.items()},
    )


def load_categorizer(*, settings: Settings) -> Categorizer:
    """The shipped categorizer: the cue lexicon, and the classifier, its labelled examples and
    the learned combiner from the classifier folder when they are there (Settings
    ``categorize_*``; the ``weight_*`` settings only weigh the signals without a combiner), and
    the word model the combiner weighs."""
    cues_path = Path(settings.categorize_cues_path or DEFAULT_CUES)
    cues = CueLexicon.load(cues_path)
    folder = Path(settings.categorize_classifier_dir or DEFAULT_CLASSIFIER_DIR)
    classifier = CategoryClassifier.load(folder) if (folder / "weights.npz").exists() else None
    examples_file = folder / EXAMPLES_FILE
    examples = LabelledExamples.load(examples_file) if examples_file.exists() else None
    combiner = LearnedCombiner.load(folder) if (folder / COMBINER_FILE).exists() else None
    words = WordClassifier.load(folder) if (folder / WORDS_FILE).exists() else None
    params = CategorizeParams.from_settings(settings)
    categorizer = Categorizer(
        cues, examples, classifier, params=params, combiner=combiner, words=words
    )
    categorizer.fingerprint = files_digest([cues_path, *sorted(folder.glob("*"))], repr(params))
    return categorizer


def files_digest(paths: Sequence[Path], *extra: str) -> str:
    """SHA-256 over the files' names and bytes and ``extra``: what a categorizer was loaded
    from, so a refresh knows a stored decision came from the same one."""
    digest = hashlib.sha256()
    for path in paths:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()
