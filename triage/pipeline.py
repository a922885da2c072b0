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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import Engine

from triage import cluster, db, store
from triage.categorize import Categorizer, load_categorizer
from triage.config import Settings
from triage.embed import Embedder, text_hash, vector_from_bytes, vector_to_bytes
from triage.issues import IssueBook
from triage.link import embedding_similarity
from triage.models import Feedback, FeedbackStatus, Unit, utcnow
from triage.preprocess import PreprocessedText, Preprocessor, UnitText, join_same_topic

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


@dataclass
class RefreshStats:
    reclustered: bool = False
    issues: int = 0
    links: int = 0
    unassigned_share: float = 0.0
    lineage: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def base_model(model_id: str) -> str:
    return model_id.removesuffix("-onnx-int8")


def build_embedder(settings: Settings) -> Embedder:
    from triage.embed import FakeEmbedder, OnnxEmbedder, SentenceTransformerEmbedder

    if settings.embedding_backend == "fake":
        return FakeEmbedder()
    if settings.embedding_backend == "onnx-int8":
        return OnnxEmbedder(
            settings.embedding_model_path,
            cache_dir=settings.embedding_cache_dir,
            threads=settings.embedding_threads,
            max_seq_length=settings.embedding_max_seq_length,
        )
    return SentenceTransformerEmbedder(settings.embedding_model_path)


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
        while True:
            with db.session_scope(engine, write_lock=True) as session:
                batch = store.claim_pending(session, limit=self.settings.worker_batch_size)
                if not batch:
                    return stats
                self._process_batch(session, batch, stats)
            if progress is not None:
                progress(len(batch))

    def _process_batch(self, session, batch: list[Feedback], stats: ProcessStats) -> None:  # type: ignore[no-untyped-def]
        results = self._preprocess([f.text or "" for f in batch])
        statements: list[tuple[Feedback, list[UnitText]]] = []
        for feedback, result in zip(batch, results, strict=True):
            feedback.attempts += 1
            error = result if isinstance(result, str) else None
            if error is None and not result.units:  # type: ignore[union-attr]
                error = (
                    "Nothing to triage: no statement left after removing greetings, sign-offs "
                    "and personal data."
                )
            if error is not None:
                feedback.status = FeedbackStatus.failed
                feedback.last_error = error
                stats.failed += 1
                continue
            assert not isinstance(result, str)
            feedback.redacted_text = result.redacted_text
            feedback.status = FeedbackStatus.processed
            feedback.processed_at = utcnow()
            feedback.last_error = None
            if not self.settings.keep_raw_text:
                feedback.text = None
            statements.append((feedback, result.units))
            stats.processed += 1
        session.add_all(batch)
        units, vectors = self._units(session, statements, stats)
        store.add_units(session, units=units)
        stats.units += len(units)
        stats.assigned += IssueBook(session, self.settings).assign_new(units, vectors)

    def _units(
        self, session, statements: list[tuple[Feedback, list[UnitText]]], stats: ProcessStats
    ) -> tuple[list[Unit], np.ndarray]:  # type: ignore[no-untyped-def]
        """One unit per topic of each ticket, with its vector: neighbouring statements whose
        embeddings are close are joined (``join_same_topic``) and the joined text is embedded."""
        flat = [unit for _, units in statements for unit in units]
        vectors = self._vectors(session, [u.text for u in flat], stats)
        units: list[Unit] = []
        rows: list[int | None] = []  # the statement vector a unit keeps; None when joined
        offset = 0
        for feedback, candidates in statements:
            groups = join_same_topic(
                candidates,
                vectors[offset : offset + len(candidates)],
                min_similarity=self.settings.preprocess_join_similarity,
            )
            for position, group in enumerate(groups):
                unit = UnitText.joined([candidates[i] for i in group], feedback.redacted_text or "")
                rows.append(offset + group[0] if len(group) == 1 else None)
                units.append(
                    Unit(
                        feedback_id=feedback.id,  # type: ignore[arg-type]
                        position=position,
                        text=unit.text,
                        lemmas=" ".join(unit.lemmas),
                        text_hash=text_hash(unit.text),
                    )
                )
            offset += len(candidates)
        joined = [i for i, row in enumerate(rows) if row is None]
        if not joined:
            return units, vectors
        fresh = self._vectors(session, [units[i].text for i in joined], stats)
        final = np.empty((len(units), vectors.shape[1]), dtype=vectors.dtype)
        kept = [i for i, row in enumerate(rows) if row is not None]
        final[kept] = vectors[[rows[i] for i in kept]]
        final[joined] = fresh
        return units, final

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
        hashes = [text_hash(t) for t in texts]
        model_id = self.embedder.model_id
        cached = store.cached_vectors(session, text_hashes=hashes, model_id=model_id)
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        if missing:
            text_of = dict(zip(hashes, texts, strict=True))
            fresh = self.embedder.embed(
                [text_of[h] for h in missing], batch_size=self.settings.embedding_batch_size
            )
            new = {h: vector_to_bytes(v) for h, v in zip(missing, fresh, strict=True)}
            store.add_vectors(session, vectors=new, model_id=model_id, dim=self.embedder.dim)
            cached.update(new)
        stats.embedded += len(missing)
        stats.cache_hits += len(hashes) - len(missing)
        if not texts:
            return np.empty((0, self.embedder.dim), dtype=np.float32)
        return np.stack([vector_from_bytes(cached[h]) for h in hashes])

    # --- issues -----------------------------------------------------------------------------

    def refresh(self, engine: Engine, *, recluster: bool = False) -> RefreshStats:
        stats = RefreshStats()
        with db.session_scope(engine, write_lock=True) as session:
            store.lock_issues(session)
            book = IssueBook(session, self.settings)
            units = book.load_units(self.embedder.model_id)
            if not units.ids:
                stats.skipped.append("no processed units yet")
                return stats
            stats.unassigned_share = book.unassigned_share(units)
            threshold = self.settings.cluster_recluster_unassigned_share
            if recluster or not book.has_issues() or stats.unassigned_share > threshold:
                clustering = cluster.Clusterer(cluster.ClusterParams.from_settings(self.settings))
                stats.lineage = book.recluster(units, clustering.fit(units.vectors))
                stats.reclustered = True
            book.relabel(units)
            stats.links = book.link_pending(embedding_similarity(self.embedder))
            book.diagnose(units, self.categorizer, now=utcnow())
            stats.issues = book.count_open()
            stats.unassigned_share = book.unassigned_share(units)
            store.record_run(session, kind="recluster" if stats.reclustered else "refresh",
                             stats=asdict(stats))  # fmt: skip
        return stats

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
