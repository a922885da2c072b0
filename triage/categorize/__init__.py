"""Stage "categorize": is an issue a ui, data, model or expectation problem, and why.

Four signals (``signals``: cue words, nearest labelled ``examples``, the linked model outputs and
the supervised ``classifier``) each score every category; the ``decision`` is their weighted sum,
with one sentence of evidence per signal; ``metrics`` scores decisions against known labels.
Parameters come in as ``CategorizeParams`` and ``ClassifierParams``, built once from ``Settings``.
"""

from triage.categorize.classifier import (
    DEFAULT_CLASSIFIER_DIR,
    CategoryClassifier,
    ClassifierParams,
    train_classifier,
)
from triage.categorize.decision import (
    DEFAULT_CUES,
    CategorizeParams,
    Categorizer,
    default_weights,
    load_categorizer,
)
from triage.categorize.evidence import CategoryDecision, Evidence, ranked
from triage.categorize.examples import CATEGORIES, EXAMPLES_FILE, LabelledExamples
from triage.categorize.metrics import LabelledIssue, classification_metrics, evaluate
from triage.categorize.signals import (
    SIGNALS,
    OutputThresholds,
    SignalScore,
    score_cues,
    score_outputs,
)
from triage.categorize.weighted import combine
from triage.lexicon import MODELS_DIR, NOT_FOR_MATCHING, CueLexicon, lemma_docs, lemma_nlp

__all__ = [
    "CATEGORIES",
    "DEFAULT_CLASSIFIER_DIR",
    "DEFAULT_CUES",
    "EXAMPLES_FILE",
    "MODELS_DIR",
    "NOT_FOR_MATCHING",
    "SIGNALS",
    "CategorizeParams",
    "Categorizer",
    "CategoryClassifier",
    "CategoryDecision",
    "ClassifierParams",
    "CueLexicon",
    "Evidence",
    "LabelledExamples",
    "LabelledIssue",
    "OutputThresholds",
    "SignalScore",
    "classification_metrics",
    "combine",
    "default_weights",
    "evaluate",
    "lemma_docs",
    "lemma_nlp",
    "load_categorizer",
    "ranked",
    "score_cues",
    "score_outputs",
    "train_classifier",
]
