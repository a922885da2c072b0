"""The data flow, composed: process pending tickets, then refresh the issues.

``process_pending``: claim a batch → redact and split (preprocess) → embed units, reusing cached
vectors (embed) → attach new units to existing issues when close enough (cluster.assign) →
mark processed. One transaction per batch, so a killed worker leaves nothing half-done.

``refresh``: re-cluster when asked or when too much is unassigned (cluster) → keep issue ids
stable (cluster.match_issues) → keywords, titles, quotes (label) → link tickets to model outputs
(link) → category with evidence (categorize) → priority with its breakdown (rank).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine

from triage import cluster, db, store
from triage.categorize import Categorizer, load_categorizer
from triage.config import Settings
from triage.embed import Embedder, base_model, build_embedder, embed_with_cache, text_hash
from triage.imports import without_deep_learning
from triage.issues import IssueBook
from triage.link import embedding_similarity
from triage.models import FeedbackStatus, utcnow

with without_deep_learning():  # spaCy and presidio, ~3 s sooner
    from triage.preprocess import PreprocessedText, Preprocessor, UnitText, topic_units

logger = logging.getLogger("triage.pipeline")

Progress = Callable[[int], None]


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    units: int = 0
    embedded: int = 0
    cache_hits: int = 0
    assigned: int = 0
    # Wall seconds per stage: preprocess (with loading spaCy and presidio), embed (with loading
    # the model), and total; the rest of total is the database, units and assignment.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RefreshStats:
    reclustered: bool = False
    issues: int = 0
    links: int = 0
    unassigned_share: float = 0.0
    lineage: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Wall seconds per step: load, cluster, issues (identity and memberships), label, link,
    # categorize_rank; total (logged, not stored) also counts the commit.
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def log_seconds(what: str, seconds: dict[str, float]) -> None:
    """One debug line, e.g. ``seconds process: preprocess=1.62 embed=8.93 total=13.10``
    (``triage run --log-level debug``; bench/embed.py reads it)."""
    logger.debug("seconds %s: %s", what, " ".join(f"{k}={v:.2f}" for k, v in seconds.items()))


class Statements(NamedTuple):
    """One processed ticket's statements, before neighbours on one topic are joined."""

    feedback_id: int
    redacted_text: str
    units: list[UnitText]


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        preprocessor: Preprocessor | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self._preprocessor = preprocessor
        self._embedder = embedder
        self._categorizer: Categorizer | None = None

    # Heavy components load on first use, so `triage issues` never waits for torch.
    @property
    def preprocessor(self) -> Preprocessor:
        if self._preprocessor is None:
            self._preprocessor = Preprocessor.from_settings(self.settings)
        return self._preprocessor

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.settings)
        return self._embedder

    # --- processing -------------------------------------------------------------------------

    def process_pending(self, engine: Engine, *, progress: Progress | None = None) -> ProcessStats:
        stats = ProcessStats()
        with timed(stats.seconds, "total"):
            while True:
                with db.session_scope(engine, write_lock=True) as session:
                    batch = store.claim_pending(session, limit=self.settings.worker_batch_size)
                    if batch:
                        self._process_batch(session, batch, stats)
                if not batch:
                    break
                if progress is not None:
                    progress(len(batch))
        log_seconds("process", stats.seconds)
        return stats

    def _process_batch(self, session, batch: list[Any], stats: ProcessStats) -> None:  # type: ignore[no-untyped-def]
        """``batch``: claimed tickets, rows of (id, text, attempts)."""
        with timed(stats.seconds, "preprocess"):
            results = self._preprocess([f.text or "" for f in batch])
        changes: list[dict[str, Any]] = []
        statements: list[Statements] = []
        for feedback, result in zip(batch, results, strict=True):
            change: dict[str, Any] = {"id": feedback.id, "attempts": feedback.attempts + 1}
            changes.append(change)
            error = result if isinstance(result, str) else None
            if error is None and not result.units:  # type: ignore[union-attr]
                error = (
                    "Nothing to triage: no statement left after removing greetings, sign-offs "
                    "and personal data."
                )
            if error is not None:
                change.update(status=FeedbackStatus.failed.value, last_error=error)
                stats.failed += 1
                continue
            assert not isinstance(result, str)
            change.update(
                redacted_text=result.redacted_text,
                status=FeedbackStatus.processed.value,
                processed_at=utcnow(),
                last_error=None,
            )
            if not self.settings.keep_raw_text:
                change["text"] = None
            statements.append(Statements(feedback.id, result.redacted_text, result.units))
            stats.processed += 1
        store.update_feedback(session, rows=changes)
        units, vectors = self._units(session, statements, stats)
        unit_ids = store.add_units(session, rows=units)
        stats.units += len(unit_ids)
        stats.assigned += IssueBook(session, self.settings).assign_new(unit_ids, vectors)

    def _units(
        self, session, statements: list[Statements], stats: ProcessStats
    ) -> tuple[list[dict[str, Any]], np.ndarray]:  # type: ignore[no-untyped-def]
        """One unit row per topic of each ticket, with its vector: neighbouring statements whose
        embeddings are close are joined (``topic_units``) and the joined text is embedded."""
        flat = [unit for ticket in statements for unit in ticket.units]
        per_ticket, vectors = topic_units(
            [(ticket.redacted_text, ticket.units) for ticket in statements],
            self._vectors(session, [u.text for u in flat], stats),
            lambda texts: self._vectors(session, texts, stats),
            min_similarity=self.settings.preprocess_join_similarity,
        )
        units = [
            {
                "feedback_id": ticket.feedback_id,
                "position": position,
                "text": unit.text,
                "lemmas": " ".join(unit.lemmas),
                "text_hash": text_hash(unit.text),
            }
            for ticket, ticket_units in zip(statements, per_ticket, strict=True)
            for position, unit in enumerate(ticket_units)
        ]
        return units, vectors

    def _preprocess(self, texts: list[str]) -> list[PreprocessedText | str]:
        """Preprocess a batch; if it fails, one text at a time, so one bad ticket is marked
        failed (the error as a string) and never blocks the rest."""
        try:
            return list(self.preprocessor.process(texts))
        except Exception:
            logger.warning("batch preprocessing failed; retrying item by item", exc_info=True)
        results: list[PreprocessedText | str] = []
        for text in texts:
            try:
                results.append(self.preprocessor.process([text])[0])
            except Exception as e:
                results.append(f"preprocess failed: {type(e).__name__}: {e}"[:1000])
        return results

    def _vectors(self, session, texts: list[str], stats: ProcessStats) -> np.ndarray:  # type: ignore[no-untyped-def]
        """Vectors for ``texts``, embedding only what the cache does not hold."""
        with timed(stats.seconds, "embed"):
            embedder = self.embedder  # loads the model on first use
        result = embed_with_cache(
            embedder,
            texts,
            lookup=partial(store.cached_vectors, session),
            save=partial(store.add_vectors, session),
            batch_size=self.settings.embedding_batch_size,
        )
        stats.seconds["embed"] += result.seconds
        stats.embedded += result.embedded
        stats.cache_hits += result.cache_hits
        return result.vectors

    # --- issues -----------------------------------------------------------------------------

    def refresh(self, engine: Engine, *, recluster: bool = False) -> RefreshStats:
        stats = RefreshStats()
        with timed(stats.seconds, "total"):
            self._refresh(engine, stats, recluster=recluster)
        log_seconds("refresh", stats.seconds)
        return stats

    def _refresh(self, engine: Engine, stats: RefreshStats, *, recluster: bool) -> None:
        seconds = stats.seconds
        with db.session_scope(engine, write_lock=True) as session:
            with timed(seconds, "load"):
                store.lock_issues(session)
                book = IssueBook(session, self.settings)
                units = book.load_units(self.embedder.model_id)
                if not units.ids:
                    stats.skipped.append("no processed units yet")
                    return
                stats.unassigned_share = book.unassigned_share(units)
            threshold = self.settings.cluster_recluster_unassigned_share
            if recluster or not book.has_issues() or stats.unassigned_share > threshold:
                clustering = cluster.Clusterer(cluster.ClusterParams.from_settings(self.settings))
                with timed(seconds, "cluster"):
                    result = clustering.fit(units.vectors)
                with timed(seconds, "issues"):
                    stats.lineage = book.recluster(units, result)
                stats.reclustered = True
            with timed(seconds, "label"):
                book.relabel(units)
            with timed(seconds, "link"):
                stats.links = book.link_pending(embedding_similarity(self.embedder))
            with timed(seconds, "categorize_rank"):
                book.diagnose(units, self.categorizer, now=utcnow())
            stats.issues = book.count_open()
            stats.unassigned_share = book.unassigned_share(units)
            store.record_run(session, kind="recluster" if stats.reclustered else "refresh",
                             stats=asdict(stats))  # fmt: skip

    @property
    def categorizer(self) -> Categorizer:
        if self._categorizer is None:
            categorizer = load_categorizer(settings=self.settings)
            trained_on = (
                categorizer.classifier.card.get("embedding_model")
                if categorizer.classifier
                else None
            )
            # The int8 ONNX export of the same weights gives vectors within cosine 0.99 of the
            # torch ones, so a classifier trained on either serves both.
            if trained_on and base_model(trained_on) != base_model(self.embedder.model_id):
                # Vectors of another model mean nothing to this classifier: decide on cue words
                # and linked outputs alone rather than on noise.
                logger.warning(
                    "classifier was trained on %s vectors; using cues and outputs only", trained_on
                )
                categorizer.classifier = categorizer.examples = None
            self._categorizer = categorizer
        return self._categorizer

    def run(
        self,
        engine: Engine,
        *,
        recluster: bool = False,
        retry_failed: bool = False,
        progress: Progress | None = None,
    ) -> tuple[ProcessStats, RefreshStats]:
        if retry_failed:
            with db.session_scope(engine) as session:
                store.requeue_failed(session)
        processed = self.process_pending(engine, progress=progress)
        return processed, self.refresh(engine, recluster=recluster)
