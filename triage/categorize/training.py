"""Training the learned signals, the classifier and its labelled examples, from labelled rows and
people's corrections, and the combiner over every signal (``combiner``, fitted on out-of-fold
scores of rows linked to their model outputs, ``stacking``), and writing them with their cards.

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
from triage.categorize.combiner import COMBINER_CARD, COMBINER_FILE, LearnedCombiner, fit_combiner
from triage.categorize.decision import CategorizeParams, Categorizer
from triage.categorize.domain import centre, centre_groups
from triage.categorize.examples import EXAMPLES_FILE, LabelledExamples
from triage.categorize.metrics import classification_metrics
from triage.categorize.stacking import (
    label_of,
    linked_contexts,
    out_of_fold_features,
    output_records,
    product_of,
)
from triage.categorize.words import WORDS_FILE, WordClassifier, train_words
from triage.config import Settings
from triage.lexicon import CueLexicon
from triage.link import LinkParams, embedding_similarity

if TYPE_CHECKING:
    from triage.embed import Embedder

# One labelled item: text, label (or gold_category), split ("train" when missing, "heldout"),
# product (or metadata.product), and the ticket fields linking reads (created_at, output_id, ...).
Row = Mapping[str, Any]
Redact = Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class TrainingParams:
    """How the classifier is fitted, how the held-out rows are decided, and the embedding batch
    size (Settings ``categorize_*`` and ``embedding_batch_size``)."""

    classifier: ClassifierParams = field(default_factory=ClassifierParams)
    categorize: CategorizeParams = field(default_factory=CategorizeParams)
    link: LinkParams = field(default_factory=LinkParams)
    batch_size: int = Settings.model_fields["embedding_batch_size"].default
    combiner_c: float = Settings.model_fields["categorize_combiner_c"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingParams:
        return cls(
            classifier=ClassifierParams.from_settings(settings),
            categorize=CategorizeParams.from_settings(settings),
            link=LinkParams.from_settings(settings),
            batch_size=settings.embedding_batch_size,
            combiner_c=settings.categorize_combiner_c,
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
    return classification_metrics([label_of(row) for row in rows], predicted)


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
    combiner: LearnedCombiner | None = None  # None with fewer than two products
    words: WordClassifier | None = None  # the word model the combiner weighs


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
    outputs: Sequence[Row] | None = None,
    redact: Redact | None = None,
) -> TrainedCategorizer:
    """Fit the classifier on the ``train`` rows plus ``corrections`` ((text, category) pairs
    people set), decide the ``heldout`` rows with ``evaluation``, and record both in the model
    card; with ``folder``, save the classifier and the examples the categorizer reads there.

    ``source`` names the labelled rows in the card (e.g. the file); ``corrections=None`` means
    the rows are all there is, and the card does not mention corrections. With rows of at least
    two products, the combiner is fitted on out-of-fold signal scores, the rows linked to
    ``outputs`` (model-output rows) as the pipeline links tickets. ``redact``: applied to the
    texts before anything else, so what is embedded and saved is what the pipeline would see.
    """
    params = params or TrainingParams()
    used = [row for row in rows if row.get("split", "train") in ("train", "heldout")]
    if redact is not None:
        redacted = redact([row["text"] for row in used])
        used = [{**row, "text": text} for row, text in zip(used, redacted, strict=True)]
    # One call over the rows in file order: the benchmark's figures were measured that way.
    vectors = embedder.embed([row["text"] for row in used], batch_size=params.batch_size)
    # Each row read against its own product, as a refresh reads a database's tickets against
    # theirs (``domain``); held-out rows too, against their product's rows.
    vectors, prior = centre_groups(vectors, [product_of(row) for row in used])
    train = [i for i, row in enumerate(used) if row.get("split", "train") == "train"]
    heldout = [i for i, row in enumerate(used) if row.get("split") == "heldout"]
    examples = LabelledExamples(
        [used[i]["text"] for i in train], vectors[train], [label_of(used[i]) for i in train]
    )
    corrected = (
        LabelledExamples(
            [text for text, _ in corrections],
            # People's corrections belong to no product of the rows: centred on the prior.
            centre(
                embedder.embed([text for text, _ in corrections], batch_size=params.batch_size),
                prior,
            ),
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
        domain_prior=prior,
    )

    words = train_words(
        examples, corrections=corrected, correction_weight=params.classifier.correction_weight
    )
    combiner = None
    products = [product_of(used[i]) for i in train]
    records = output_records(outputs or [])
    if len(set(products)) >= 2:
        # Every row, held out or not, linked at once: the version lift counts all complaints,
        # as the refresh counts every linked ticket in the database.
        contexts = linked_contexts(
            used, records, link_params=params.link, similarity=embedding_similarity(embedder)
        )
        features = out_of_fold_features(
            examples, products, [contexts[i] for i in train], cues=cues,
            classifier_params=params.classifier, categorize_params=params.categorize,
            corrections=corrected,
        )  # fmt: skip
        combiner = fit_combiner(
            features, examples.labels, products, c=params.combiner_c, vectors=examples.vectors
        )
        combiner.card["training_data"] = (
            f"{training_data}, {len(set(products))} products, linked to {len(records)} model "
            f"outputs ({sum(1 for i in train if contexts[i][0] is not None)} rows linked)"
        )
        classifier.card["combiner"] = {
            "file": COMBINER_FILE,
            "groups_kept": combiner.card["groups_kept"],
            "cv": combiner.card["cv"],
        }
        if heldout and evaluation is TEXT_SIGNALS_ONLY:
            # By default, the held-out rows are decided as the refresh decides tickets: with
            # their own links (a caller's own evaluation, as bench/categorize.py's, stays).
            evaluation = HeldoutEvaluation(
                "the learned combiner over every signal, held-out rows linked to the outputs",
                lambda categorizer, rows, vecs: classification_metrics(
                    [label_of(row) for row in rows],
                    [
                        categorizer.decide(
                            [row["text"]], vecs[k : k + 1], contexts[i][0], context=contexts[i][1]
                        ).category
                        for k, (i, row) in enumerate(zip(heldout, rows, strict=True))
                    ],
                ),
            )

    metrics = None
    if heldout:
        categorizer = Categorizer(
            cues, examples, classifier, params=params.categorize, combiner=combiner, words=words
        )
        metrics = evaluation.run(categorizer, [used[i] for i in heldout], vectors[heldout])
        classifier.card["heldout_metrics"] = {
            "split": f"{source} split=heldout ({len(heldout)} items)",
            "evaluated_as": evaluation.evaluated_as,
            "categorizer": (
                {"combiner_groups": combiner.card["groups_kept"], "knn_k": categorizer.knn_k}
                if combiner is not None
                else {"weights": categorizer.weights, "knn_k": categorizer.knn_k}
            ),
            **{name: metrics[name] for name in evaluation.card_metrics},
            "date": datetime.now(UTC).date().isoformat(),
        }
    classifier.card["files"] = {
        "weights.npz": "classes, coef, intercept, feature mean and scale, cue categories",
        "card.json": "this card",
        EXAMPLES_FILE: "the training texts"
        + (" (redacted)" if redact is not None else "")
        + ", their vectors and labels (nearest examples)",
    }
    if words is not None:
        classifier.card["files"][WORDS_FILE] = (
            f"the word model: {len(words.vocabulary)} words and word pairs, their idf and "
            "logistic-regression coefficients"
        )
    if combiner is not None:
        classifier.card["files"][COMBINER_FILE] = "the learned combiner's arrays"
        classifier.card["files"][COMBINER_CARD] = "its card: features, coefficients, CV macro-F1"
    saved = examples + corrected if corrected is not None else examples
    if folder is not None:
        folder = classifier.save(folder)
        saved.save(folder / EXAMPLES_FILE)
        if combiner is not None:
            combiner.save(folder)
        else:
            # A combiner left from an earlier training would read the new signals wrongly.
            (folder / COMBINER_FILE).unlink(missing_ok=True)
        if words is not None:
            words.save(folder)
        else:
            (folder / WORDS_FILE).unlink(missing_ok=True)
    return TrainedCategorizer(
        classifier, saved, len(train), len(heldout), metrics, folder, combiner, words
    )
