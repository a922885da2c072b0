"""The decision: the learned combiner (``combiner``) when the classifier folder has one, else a
readable weighted sum of the signals (``weighted``), with evidence.

Learned (``learned``): the combiner's probabilities decide; each signal's evidence carries what
it added to the decided category's logit next to an average ticket, with the signal's reason
sentences. The weighted sum is the fallback for classifier folders trained before the combiner
existed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from triage.categorize.classifier import DEFAULT_CLASSIFIER_DIR, CategoryClassifier
from triage.categorize.combiner import COMBINER_FILE, LearnedCombiner
from triage.categorize.context import TicketContext
from triage.categorize.evidence import CategoryDecision
from triage.categorize.examples import EXAMPLES_FILE, LabelledExamples
from triage.categorize.learned import decide_learned_many
from triage.categorize.signals import (
    SIGNALS,
    OutputThresholds,
    SignalScore,
    classifier_score,
    score_cues,
    score_examples_many,
    score_outputs,
)
from triage.categorize.weighted import combine
from triage.categorize.words import WORDS_FILE, WordClassifier, score_words_many
from triage.config import Settings, defaults_of
from triage.errors import InvalidInputError
from triage.lexicon import MODELS_DIR, CueLexicon, lemma_docs
from triage.link import OutputSignals

DEFAULT_CUES = MODELS_DIR / "cues-v1.json"


_setting = defaults_of("categorize")


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
    reaction_prior: float = _setting("reaction_prior")
    issue_weight: float = _setting("issue_weight")
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
            reaction_prior=settings.categorize_reaction_prior,
            issue_weight=settings.categorize_issue_weight,
            thresholds=OutputThresholds.from_settings(settings),
        )


@dataclass(frozen=True)
class TicketInputs:
    """What one ticket (or issue) is decided from (``Categorizer.decide``'s arguments), for
    deciding many at once (``Categorizer.decide_many``)."""

    texts: Sequence[str]
    vectors: np.ndarray
    signals: OutputSignals | None = None
    docs: Sequence[Any] | None = None
    context: TicketContext | None = None
    words: SignalScore | None = None
    examples: SignalScore | None = None


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
    def _learned_combiner(self) -> LearnedCombiner | None:
        return self.combiner if self.learned else None

    @property
    def neighbour_weight(self) -> float:
        """How much a ticket's nearest tickets' own probabilities weigh in its category
        (``neighbours``): the learned combiner's, 0 without one."""
        combiner = self._learned_combiner
        return combiner.neighbour_weight if combiner else 0.0

    @property
    def uncertain_below(self) -> float:
        """Below this confidence a decision says it is uncertain (``abstain``): the learned
        combiner's cross-validated threshold, 0 (never) without one."""
        combiner = self._learned_combiner
        return combiner.uncertain_below if combiner else 0.0

    @property
    def weights(self) -> dict[str, float]:
        return self.params.weights

    @property
    def reaction_prior(self) -> float:
        """What a quick reaction adds to the model's log-odds (``learned``): the hand-set prior
        stands in for the reaction's weight only while the learned combiner gives it none."""
        if self.combiner is None or "reaction" in self.combiner.groups:
            return 0.0
        return self.params.reaction_prior

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
        inputs = TicketInputs(texts, vectors, signals, docs, words=words, examples=examples)
        return self.signal_scores_many([inputs])[0]

    def signal_scores_many(
        self, tickets: Sequence[TicketInputs], *, skip: Collection[str] = ()
    ) -> list[dict[str, SignalScore]]:
        """``signal_scores`` of each ticket, each signal in one pass over all of them (texts
        without ``docs`` parsed together, the classifier run over every ticket's vectors at
        once): a refresh scores thousands. ``skip``: signals not to score (the learned
        combiner gives them no weight)."""
        if not tickets:
            return []
        vectors = [
            np.asarray(t.vectors, dtype=np.float32).reshape(len(t.texts), -1) for t in tickets
        ]
        matches = self._cue_matches(tickets)
        examples = [t.examples for t in tickets]
        words = [t.words for t in tickets]
        if "examples" not in skip:
            todo = [i for i, score in enumerate(examples) if score is None]
            found = self.examples_scores([vectors[i] for i in todo])
            for i, score in zip(todo, found, strict=True):
                examples[i] = score
        if "words" not in skip:
            todo = [i for i, score in enumerate(words) if score is None]
            found = self.words_scores([tickets[i].texts for i in todo])
            for i, score in zip(todo, found, strict=True):
                words[i] = score
        classifier: list[SignalScore | None] = [None] * len(tickets)
        if self.classifier is not None:
            if "classifier" in skip:
                for rows in vectors:  # still refuse vectors of another embedding model
                    self.classifier.check(rows)
            else:
                classifier = list(self._classifier_scores(self.classifier, vectors, matches))
        scored = []
        for ticket, matched, *scores in zip(
            tickets, matches, examples, classifier, words, strict=True
        ):
            one: dict[str, SignalScore | None] = {}
            if "cues" not in skip:
                one["cues"] = score_cues(matched, saturation=self.params.cue_saturation)
            one["examples"] = scores[0]
            if ticket.signals is not None and "outputs" not in skip:
                one["outputs"] = score_outputs(ticket.signals, self.params.thresholds)
            one["classifier"], one["words"] = scores[1:]
            # In this order (cues, examples, outputs, classifier, words), the ones scored.
            scored.append({name: score for name, score in one.items() if score is not None})
        return scored

    def _cue_matches(self, tickets: Sequence[TicketInputs]) -> list[list[dict[str, list[str]]]]:
        """Each ticket's cue matches, per text; the texts of tickets without ``docs`` parsed
        in one pass."""
        unparsed = [text for t in tickets if t.docs is None for text in t.texts]
        parsed = iter(lemma_docs(unparsed) if unparsed else [])
        docs = [
            list(t.docs) if t.docs is not None else [next(parsed) for _ in t.texts] for t in tickets
        ]
        found = self.cues.match(_flat([t.texts for t in tickets]), docs=_flat(docs))
        return _split(found, [len(each) for each in docs])

    @staticmethod
    def _classifier_scores(
        classifier: CategoryClassifier,
        vectors: Sequence[np.ndarray],
        matches: Sequence[Sequence[Mapping[str, list[str]]]],
    ) -> list[SignalScore]:
        """The classifier signal of each ticket (its rows of ``vectors``, its texts' cue
        ``matches``): one ``predict_proba`` over every ticket's rows, averaged per ticket."""
        rows = np.concatenate(vectors) if vectors else np.empty((0, classifier.embedding_dim))
        cue_counts = None
        if classifier.cue_categories:
            cue_counts = np.array(
                [[len(m.get(n, [])) for n in classifier.cue_categories] for m in _flat(matches)],
                dtype=np.float32,
            ).reshape(len(rows), len(classifier.cue_categories))
        proba = classifier.predict_proba(rows, cue_counts)
        sizes = [len(each) for each in vectors]
        return [classifier_score(classifier.classes, p) for p in _split(proba, sizes)]

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
        inputs = TicketInputs(texts, vectors, signals, docs, context, words, examples)
        return self.decide_many([inputs])[0]

    def decide_many(self, tickets: Sequence[TicketInputs]) -> list[CategoryDecision]:
        """``decide`` of each ticket, as it decides the ticket alone, with every signal scored
        in one pass over all of them (``signal_scores_many``) and, learned, the combiner run
        once over all their features (``learned.decide_learned_many``): a refresh decides
        thousands. A signal the combiner gives no weight is not scored (the classifier, once
        the combiner learned to do without it); the weighted sum decides one ticket at a
        time."""
        if any(not t.texts for t in tickets):
            raise InvalidInputError("An issue needs at least one text to be categorised.")
        combiner = self._learned_combiner
        if combiner is None:
            return [combine(s, self.params.weights) for s in self.signal_scores_many(tickets)]
        prior = self.reaction_prior  # it reads the cues, weighed or not (``quick_reaction``)
        unused = {s for s in (*SIGNALS, "words") if s not in combiner.groups}
        scored = self.signal_scores_many(tickets, skip=unused - ({"cues"} if prior else set()))
        contexts = [t.context or TicketContext() for t in tickets]
        return decide_learned_many(combiner, scored, contexts, reaction_prior=prior)


def _flat(groups: Sequence[Sequence[Any]]) -> list[Any]:
    return [item for group in groups for item in group]


def _split(items: Any, sizes: Sequence[int]) -> list[Any]:
    """``items`` (a list or rows of an array) cut into consecutive runs of ``sizes``."""
    bounds = np.cumsum([0, *sizes]).tolist()
    return [items[start:stop] for start, stop in pairwise(bounds)]


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
