"""Training the learned signals, the classifier and its labelled examples, from labelled rows and
people's corrections, and writing them with their model card.

``triage train`` and ``bench/categorize.py`` both train this way; they differ only in how the
held-out rows are decided (``HeldoutEvaluation``) and in what they print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from triage.categorize.classifier import CategoryClassifier, ClassifierParams, train_classifier
from triage.categorize.decision import CategorizeParams, Categorizer
from triage.categorize.examples import EXAMPLES_FILE, LabelledExamples
from triage.categorize.metrics import classification_metrics
from triage.config import Settings
from triage.lexicon import CueLexicon

if TYPE_CHECKING:
    from triage.embed import Embedder

Row = Mapping[str, Any]  # one labelled item: text, label, split ("train" when missing, "heldout")


@dataclass(frozen=True)
class TrainingParams:
    """How the classifier is fitted, how the held-out rows are decided, and the embedding batch
    size (Settings ``categorize_*`` and ``embedding_batch_size``)."""

    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    categorize: CategorizeParams = field(default_factory=CategorizeParams)
    batch_size: int = Settings.model_fields["embedding_batch_size"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingParams:
        return cls(
            classifier=ClassifierParams.from_settings(settings),
            categorize=CategorizeParams.from_settings(settings),
            batch_size=settings.embedding_batch_size,
        )


@dataclass(frozen=True)
class HeldoutEvaluation:
    """How the held-out rows are decided, and what the model card keeps of the result.

    ``run(categorizer, heldout_rows, their_vectors)`` returns metrics with at least
    ``macro_f1`` (``classification_metrics`` or ``evaluate``); ``card_metrics`` names the ones
    the card records.
    """

    evaluated_as: str
    run: Callable[[Categorizer, Sequence[Row], np.ndarray], dict[str, Any]]
    card_metrics: tuple[str, ...] = ("macro_f1",)


def _decide_on_text(
    categorizer: Categorizer, rows: Sequence[Row], vectors: np.ndarray
) -> dict[str, Any]:
    predicted = [
        categorizer.decide([row["text"]], vectors[i : i + 1]).category for i, row in enumerate(rows)
    ]
    return classification_metrics([row["label"] for row in rows], predicted)


# By default only the text signals decide: the held-out items' linked outputs are not in the
# database the corrections come from.
TEXT_SIGNALS_ONLY = HeldoutEvaluation(
    "text signals only (cues, examples, classifier)", _decide_on_text
)


@dataclass(frozen=True)
class TrainedCategorizer:
    classifier: CategoryClassifier
    examples: LabelledExamples  # the training rows and the corrections, as saved
    train: int  # labelled rows trained on
    heldout: int  # labelled rows evaluated
    metrics: dict[str, Any] | None  # from the evaluation; None without held-out rows
    folder: Path | None  # where it was saved


def train_categorizer(
    rows: Sequence[Row],
    *,
    embedder: Embedder,
    cues: CueLexicon,
    source: str,
    corrections: Sequence[tuple[str, str]] | None = None,
    params: TrainingParams | None = None,
    evaluation: HeldoutEvaluation = TEXT_SIGNALS_ONLY,
    folder: str | Path | None = None,
) -> TrainedCategorizer:
    """Fit the classifier on the ``train`` rows plus ``corrections`` ((text, category) pairs
    people set), decide the ``heldout`` rows with ``evaluation``, and record both in the model
    card; with ``folder``, save the classifier and the examples the categorizer reads there.

    ``source`` names the labelled rows in the card (e.g. the file); ``corrections=None`` means
    the rows are all there is, and the card does not mention corrections.
    """
    params = params or TrainingParams()
    used = [row for row in rows if row.get("split", "train") in ("train", "heldout")]
    # One call over the rows in file order: the benchmark's figures were measured that way.
    vectors = embedder.embed([row["text"] for row in used], batch_size=params.batch_size)
    train = [i for i, row in enumerate(used) if row.get("split", "train") == "train"]
    heldout = [i for i, row in enumerate(used) if row.get("split") == "heldout"]
    examples = LabelledExamples(
        [used[i]["text"] for i in train], vectors[train], [used[i]["label"] for i in train]
    )
    corrected = (
        LabelledExamples(
            [text for text, _ in corrections],
            embedder.embed([text for text, _ in corrections], batch_size=params.batch_size),
            [category for _, category in corrections],
        )
        if corrections
        else None
    )
    training_data = f"{source} split=train ({len(train)} items)"
    if corrections is not None:
        training_data += f" and {len(corrections)} corrected units"
    classifier = train_classifier(
        examples.texts,
        examples.vectors,
        examples.labels,
        params=params.classifier,
        corrections=corrected,
        cues=cues,
        card={"training_data": training_data, "embedding_model": embedder.model_id},
    )

    metrics = None
    if heldout:
        categorizer = Categorizer(cues, examples, classifier, params=params.categorize)
        metrics = evaluation.run(categorizer, [used[i] for i in heldout], vectors[heldout])
        classifier.card["heldout_metrics"] = {
            "split": f"{source} split=heldout ({len(heldout)} items)",
            "evaluated_as": evaluation.evaluated_as,
            "categorizer": {"weights": categorizer.weights, "knn_k": categorizer.knn_k},
            **{name: metrics[name] for name in evaluation.card_metrics},
            "date": datetime.now(UTC).date().isoformat(),
        }
    classifier.card["files"] = {
        "weights.npz": "classes, coef, intercept, feature mean and scale, cue categories",
        "card.json": "this card",
        EXAMPLES_FILE: "the training texts, their vectors and labels (nearest examples)",
    }
    saved = examples + corrected if corrected is not None else examples
    if folder is not None:
        folder = classifier.save(folder)
        saved.save(folder / EXAMPLES_FILE)
    return TrainedCategorizer(classifier, saved, len(train), len(heldout), metrics, folder)
