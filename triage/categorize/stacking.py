"""Training rows as the refresh sees tickets: linked to model outputs with the pipeline's own
``link_feedback``, their output signals and context computed by ``context.ticket_contexts``, and
every signal scored out of fold (the classifier and the nearest examples never see the row's own
product), so the combiner learns how much each signal is worth on a product it has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from triage.categorize.classifier import ClassifierParams, train_classifier
from triage.categorize.combiner import FEATURES, feature_vector
from triage.categorize.context import TicketContext, TicketLinks, ticket_contexts
from triage.categorize.decision import CategorizeParams, Categorizer
from triage.categorize.examples import LabelledExamples
from triage.categorize.words import train_words
from triage.lexicon import CueLexicon, lemma_docs
from triage.link import (
    FeedbackRecord,
    LinkParams,
    OutputRecord,
    OutputSignals,
    Similarity,
    link_feedback,
)

Row = Mapping[str, Any]


def label_of(row: Row) -> str:
    return str(row.get("label") or row.get("gold_category"))


def product_of(row: Row) -> str:
    """The row's product, the group the combiner is cross-validated by."""
    return str(row.get("product") or (row.get("metadata") or {}).get("product") or "")


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif value:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    else:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def output_records(rows: Sequence[Row]) -> list[OutputRecord]:
    """Model-output JSONL rows (as ``triage ingest outputs`` reads them) as link records."""
    return [
        OutputRecord(
            id=i,
            output_id=str(row["output_id"]),
            created_at=_when(row.get("created_at")),
            model=str(row["model"]),
            model_version=row.get("model_version"),
            feature=row.get("feature"),
            input=row.get("input"),
            output=row.get("output"),
            confidence=row.get("confidence"),
            latency_ms=row.get("latency_ms"),
            user_id=row.get("user_id"),
            session_id=row.get("session_id"),
            meta=row.get("metadata"),
        )
        for i, row in enumerate(rows)
    ]


def linked_contexts(
    rows: Sequence[Row],
    outputs: Sequence[OutputRecord],
    *,
    link_params: LinkParams,
    similarity: Similarity | None,
) -> list[tuple[OutputSignals | None, TicketContext]]:
    """Each row's output signals and context, linked as the pipeline links tickets."""
    if not outputs:
        return [(None, TicketContext())] * len(rows)
    records = [
        FeedbackRecord(
            id=i,
            created_at=_when(row.get("created_at")),
            text=str(row["text"]),
            user_id=row.get("user_id"),
            session_id=row.get("session_id"),
            output_id=row.get("output_id"),
        )
        for i, row in enumerate(rows)
    ]
    by_id = {o.id: o for o in outputs}
    linked: dict[int, list[OutputRecord]] = {}
    for decision in link_feedback(records, outputs, link_params, similarity=similarity):
        linked.setdefault(decision.feedback_id, []).append(by_id[decision.model_output_id])
    tickets = {r.id: TicketLinks(r.created_at, linked.get(r.id, [])) for r in records}
    contexts = ticket_contexts(tickets, outputs)
    return [contexts[i] for i in range(len(rows))]


def out_of_fold_features(
    examples: LabelledExamples,
    products: Sequence[str],
    contexts: Sequence[tuple[OutputSignals | None, TicketContext]],
    *,
    cues: CueLexicon,
    classifier_params: ClassifierParams,
    categorize_params: CategorizeParams,
    corrections: LabelledExamples | None = None,
) -> np.ndarray:
    """``(len(examples), len(FEATURES))``: each row scored by a classifier and examples fitted
    on the other products (plus the corrections, which belong to no product)."""
    docs = lemma_docs(examples.texts)  # parsed once for every fold's cue counts and scores
    counts = cues.counts(examples.texts)
    correction_counts = cues.counts(corrections.texts) if corrections is not None else None
    groups = np.array(products)
    full = np.zeros((len(examples), len(FEATURES)))
    for product in sorted(set(products)):
        test = np.flatnonzero(groups == product)
        train = np.flatnonzero(groups != product)
        if len({examples.labels[i] for i in train}) < 2:
            continue  # one product only: nothing to hold out against
        fold = LabelledExamples(
            [examples.texts[i] for i in train],
            examples.vectors[train],
            [examples.labels[i] for i in train],
        )
        fold_counts = counts[train]
        if corrections is not None and correction_counts is not None:
            fold_counts = np.vstack([fold_counts, correction_counts])
        classifier = train_classifier(
            fold.texts, fold.vectors, fold.labels, params=classifier_params,
            corrections=corrections, cues=cues, cue_counts=fold_counts,
        )  # fmt: skip
        known = fold + corrections if corrections is not None else fold
        words = train_words(
            fold, corrections=corrections, correction_weight=classifier_params.correction_weight
        )
        categorizer = Categorizer(cues, known, classifier, params=categorize_params, words=words)
        for i in test.tolist():
            signals, context = contexts[i]
            scored = categorizer.signal_scores(
                [examples.texts[i]], examples.vectors[i : i + 1], signals, docs=[docs[i]]
            )
            full[i] = feature_vector(scored, context)
    return full
