"""Processing one claimed batch: preprocess the tickets, record each outcome on its ticket, and
turn the statements into unit rows with vectors (embedded once per text, through the cache).

A batch is computed first (``Batch``: nothing written yet, new vectors held in memory) and then
written in one transaction (``Pipeline.process_pending``), so a worker killed halfway leaves its
tickets pending, never half-processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from sqlmodel import Session

from triage import store
from triage.embed import Embedder, embed_with_cache, text_hash, vector_to_bytes
from triage.models import FeedbackStatus, utcnow
from triage.pipeline.stats import ProcessStats
from triage.preprocess import PreprocessedText, Preprocessor, UnitText, topic_units

logger = logging.getLogger(__name__)

NOTHING_TO_TRIAGE = (
    "Nothing to triage: no statement left after removing greetings, sign-offs and personal data."
)

# Texts in, one vector per text out (``embed_cached`` with the session and embedder bound).
Vectors = Callable[[list[str]], np.ndarray]


class Statements(NamedTuple):
    """One processed ticket's statements, before neighbours on one topic are joined."""

    feedback_id: int
    redacted_text: str
    units: list[UnitText]


def preprocess(preprocessor: Preprocessor, texts: list[str]) -> list[PreprocessedText | str]:
    """Preprocess a batch; if it fails, one text at a time, so one bad ticket is marked
    failed (the error as a string) and never blocks the rest."""
    try:
        return list(preprocessor.process(texts))
    except Exception:
        logger.warning("batch preprocessing failed; retrying item by item", exc_info=True)
    results: list[PreprocessedText | str] = []
    for text in texts:
        try:
            results.append(preprocessor.process([text])[0])
        except Exception as e:
            results.append(f"preprocess failed: {type(e).__name__}: {e}"[:1000])
    return results


def record_outcomes(
    batch: Sequence[Any],
    results: Sequence[PreprocessedText | str],
    stats: ProcessStats,
    *,
    keep_raw_text: bool,
) -> tuple[list[dict[str, Any]], list[Statements]]:
    """The change to write to each claimed ticket (``store.update_feedback`` rows), and the
    statements of those processed. ``batch``: rows of (id, text, attempts)."""
    changes: list[dict[str, Any]] = []
    statements: list[Statements] = []
    for feedback, result in zip(batch, results, strict=True):
        change: dict[str, Any] = {"id": feedback.id, "attempts": feedback.attempts + 1}
        changes.append(change)
        error = result if isinstance(result, str) else None
        if not isinstance(result, str) and not result.units:
            error = NOTHING_TO_TRIAGE
        if error is not None:
            change.update(status=FeedbackStatus.failed.value, last_error=error)
            if not keep_raw_text:  # a failed ticket has been processed too
                change["text"] = None
            stats.failed += 1
            continue
        assert not isinstance(result, str)
        change.update(
            redacted_text=result.redacted_text,
            status=FeedbackStatus.processed.value,
            processed_at=utcnow(),
            last_error=None,
        )
        if not keep_raw_text:
            change["text"] = None
        statements.append(Statements(feedback.id, result.redacted_text, result.units))
        stats.processed += 1
    return changes, statements


@dataclass
class Batch:
    """A computed batch, to be written in one transaction (``write_batch``): the change to each
    ticket, the unit rows with their vectors, and the vectors embedded for it (``new_vectors``,
    text hash -> bytes, for the cache)."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    new_vectors: dict[str, bytes] = field(default_factory=dict)
    model_id: str = ""
    dim: int = 0

    def only(self, feedback_ids: Collection[int]) -> Batch:
        """The part of the batch about ``feedback_ids`` (the tickets still pending)."""
        keep = [i for i, row in enumerate(self.units) if row["feedback_id"] in feedback_ids]
        return replace(
            self,
            changes=[c for c in self.changes if c["id"] in feedback_ids],
            units=[self.units[i] for i in keep],
            vectors=self.vectors[keep] if len(self.units) else self.vectors,
        )


def write_batch(session: Session, batch: Batch) -> list[int]:
    """Store a computed batch: its new vectors, each ticket's change and the unit rows; the
    new units' ids, in order."""
    store.add_vectors(session, vectors=batch.new_vectors, model_id=batch.model_id, dim=batch.dim)
    store.update_feedback(session, rows=batch.changes)
    return store.add_units(session, rows=batch.units)


def embed_cached(
    session: Session,
    embedder: Embedder,
    texts: list[str],
    stats: ProcessStats | None,
    *,
    batch_size: int,
    pending: dict[str, bytes],
) -> np.ndarray:
    """Vectors for ``texts``, embedding only what the cache (or ``pending``, the vectors this
    batch embedded already) does not hold; new ones go to ``pending``, for ``write_batch`` (or
    the refresh's write) to store. ``stats``, when given, counts what was embedded."""

    def lookup(*, text_hashes: Sequence[str], model_id: str) -> dict[str, bytes]:
        found = {h: pending[h] for h in text_hashes if h in pending}
        missing = [h for h in text_hashes if h not in found]
        return {**store.cached_vectors(session, text_hashes=missing, model_id=model_id), **found}

    def save(*, vectors: dict[str, bytes], model_id: str, dim: int) -> None:
        pending.update(vectors)

    result = embed_with_cache(embedder, texts, lookup=lookup, save=save, batch_size=batch_size)
    if stats is None:
        return result.vectors
    stats.seconds["embed"] = stats.seconds.get("embed", 0.0) + result.seconds
    stats.embedded += result.embedded
    stats.cache_hits += result.cache_hits
    return result.vectors


def unit_rows(
    statements: list[Statements],
    vectors: Vectors,
    *,
    join_similarity: float,
    pending: dict[str, bytes],
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One unit row per topic of each ticket, with its vector: neighbouring statements whose
    embeddings are close are joined (``topic_units``), their vectors averaged. A joined unit's
    vector goes to ``pending`` under its text's hash, as an embedded text's does: the units'
    vectors are read back by their texts' hashes."""
    flat = [unit for ticket in statements for unit in ticket.units]
    per_ticket, unit_vectors = topic_units(
        [(ticket.redacted_text, ticket.units) for ticket in statements],
        vectors([u.text for u in flat]),
        min_similarity=join_similarity,
    )
    said = {u.text for u in flat}
    rows: list[dict[str, Any]] = []
    for ticket, ticket_units in zip(statements, per_ticket, strict=True):
        for position, unit in enumerate(ticket_units):
            key = text_hash(unit.text)
            if unit.text not in said:  # joined: its vector is no text's embedding
                pending.setdefault(key, vector_to_bytes(unit_vectors[len(rows)]))
            rows.append(
                {
                    "feedback_id": ticket.feedback_id,
                    "position": position,
                    "text": unit.text,
                    "lemmas": " ".join(unit.lemmas),
                    "text_hash": key,
                }
            )
    return rows, unit_vectors
