"""The data flow, composed: process pending tickets, then refresh the issues.

``process_pending``: claim a batch → redact and split (preprocess) → embed units, reusing cached
vectors (embed) → attach new units to existing issues when close enough (cluster.assign) →
mark processed. The batch is written in one transaction, so a killed worker leaves nothing
half-done; on SQLite it is computed before that transaction, outside the write lock.

``refresh``: link tickets to model outputs (link) → each ticket's own category with evidence
(categorize) → re-cluster on wording and cause when asked or when too much is unassigned
(cluster) → keep issue ids stable (identity.match_issues) → keywords, titles, quotes (label) →
each issue's category as its tickets' aggregate, and priority with its breakdown (rank).

Each step is a function of the session and its inputs in this package; this class only builds
their parameters once from ``Settings``, loads the heavy components, and runs them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from triage import cluster, db, store
from triage.categorize import Categorizer, load_categorizer
from triage.config import Settings
from triage.embed import Embedder, build_embedder
from triage.link import LinkParams, embedding_similarity
from triage.models import utcnow
from triage.pipeline.collector import collector_paused
from triage.pipeline.diagnose import (
    DiagnoseParams,
    changed_issues,
    diagnose,
    for_embedder,
    issue_keys,
    judge_tickets,
)
from triage.pipeline.labels import LabelParams, prefetch_titles, relabel
from triage.pipeline.links import link_pending
from triage.pipeline.memberships import (
    MembershipParams,
    assign_new,
    count_open,
    issue_of,
    recluster_issues,
)
from triage.pipeline.process import (
    Batch,
    embed_cached,
    preprocess,
    record_outcomes,
    unit_rows,
    write_batch,
)
from triage.pipeline.stats import ProcessStats, RefreshStats, log_seconds, timed
from triage.pipeline.units import embed_missing, load_units
from triage.preprocess import Preprocessor, PreprocessParams
from triage.rank import iso_week_start
from triage.rollups import roll_up

Progress = Callable[[int], None]  # called with how many tickets a batch processed
Phase = Callable[[str], None]  # called with the name of each refresh phase as it starts
Within = Callable[[int, int], None]  # (done, of about how many) within a long phase

# The refresh's phases in order, each with what a person watching it is told.
PHASES = {
    "rollup": "rolling up new model outputs",
    "link": "linking tickets to model outputs",
    "load": "loading units",
    "categorize": "deciding each ticket's category",
    "cluster": "forming issues",
    "titles": "embedding the new issues' title candidates",
    "issues": "keeping issue ids stable",
    "label": "titles, keywords and quotes",
    "rank": "issue categories and priorities",
}


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        preprocessor: Preprocessor | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.preprocess_params = PreprocessParams.from_settings(settings)
        self.cluster_params = cluster.ClusterParams.from_settings(settings)
        self.membership_params = MembershipParams.from_settings(settings)
        self.label_params = LabelParams.from_settings(settings)
        self.link_params = LinkParams.from_settings(settings)
        self.diagnose_params = DiagnoseParams.from_settings(settings)
        self._preprocessor = preprocessor
        self._embedder = embedder
        self._categorizer: Categorizer | None = None
        # Part of every issue's key: changed settings redo every issue.
        self._params = repr((self.label_params, self.diagnose_params))

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

    @property
    def categorizer(self) -> Categorizer:
        if self._categorizer is None:
            categorizer = load_categorizer(settings=self.settings)
            self._categorizer = for_embedder(categorizer, self.embedder.model_id)
        return self._categorizer

    def run(
        self,
        engine: Engine,
        *,
        recluster: bool = False,
        retry_failed: bool = False,
        progress: Progress | None = None,
        phase: Phase | None = None,
        within: Within | None = None,
    ) -> tuple[ProcessStats, RefreshStats]:
        if retry_failed:
            with db.session_scope(engine) as session:
                store.requeue_failed(session)
        processed = self.process_pending(engine, progress=progress)
        return processed, self.refresh(engine, recluster=recluster, phase=phase, within=within)

    # --- processing -------------------------------------------------------------------------

    def process_pending(
        self,
        engine: Engine,
        *,
        progress: Progress | None = None,
        until: Callable[[], bool] | None = None,
    ) -> ProcessStats:
        """Process pending tickets batch by batch until none is left, or until ``until()`` is
        true after a batch (a worker's refresh falls due, or it is asked to stop: while tickets
        arrive faster than it processes them, "none left" never comes)."""
        stats = ProcessStats()
        # On SQLite a write holds the database's one write lock, so a batch is read and computed
        # outside any write, then what is still pending is written in one short transaction:
        # ingestion waits for the writes, never for spaCy or the embedder. PostgreSQL claims the
        # rows instead (FOR UPDATE SKIP LOCKED, which blocks no one else) for the whole batch,
        # so several workers take disjoint batches.
        step = self._process_then_write if db.is_sqlite(engine) else self._process_claimed
        with timed(stats.seconds, "total"):
            while done := step(engine, stats):
                if progress is not None:
                    progress(done)
                if until is not None and until():
                    break
        log_seconds("process", stats.seconds)
        return stats

    def _process_claimed(self, engine: Engine, stats: ProcessStats) -> int:
        with db.session_scope(engine, write_lock=True) as session:
            batch = store.claim_pending(session, limit=self.settings.worker_batch_size)
            if batch:
                self._write(session, self._compute(session, batch, stats), stats)
        return len(batch)

    def _process_then_write(self, engine: Engine, stats: ProcessStats) -> int:
        with db.session_scope(engine) as session:
            batch = store.claim_pending(session, limit=self.settings.worker_batch_size)
            if not batch:
                return 0
            computed = self._compute(session, batch, stats)
        with db.session_scope(engine, write_lock=True) as session:
            # Another process may have processed some meanwhile: only what is as it was read.
            still = store.still_pending(session, {f.id: f.attempts for f in batch})
            self._write(session, computed.only(still), stats)
        return len(batch)

    def _compute(self, session: Session, batch: list[Any], stats: ProcessStats) -> Batch:
        """Preprocess and embed a batch; ``session`` is only read (the vector cache)."""
        with timed(stats.seconds, "preprocess"):
            results = preprocess(self.preprocessor, [f.text or "" for f in batch])
        changes, statements = record_outcomes(
            batch, results, stats, keep_raw_text=self.settings.keep_raw_text
        )
        with timed(stats.seconds, "embed"):
            embedder = self.embedder  # loads the model on first use
        pending: dict[str, bytes] = {}
        units, vectors = unit_rows(
            statements,
            lambda texts: embed_cached(
                session, embedder, texts, stats,
                batch_size=self.settings.embedding_batch_size, pending=pending,
            ),
            join_similarity=self.preprocess_params.join_similarity, pending=pending,
        )  # fmt: skip
        return Batch(changes, units, vectors, pending, embedder.model_id, embedder.dim)

    def _write(self, session: Session, batch: Batch, stats: ProcessStats) -> None:
        unit_ids = write_batch(session, batch)
        stats.units += len(unit_ids)
        stats.assigned += assign_new(
            session, unit_ids, batch.vectors, threshold=self.membership_params.assign_threshold
        )

    # --- issues -----------------------------------------------------------------------------

    def refresh(
        self,
        engine: Engine,
        *,
        recluster: bool = False,
        phase: Phase | None = None,
        within: Within | None = None,
    ) -> RefreshStats:
        """``phase``: told each phase's name as it starts; ``within``: how far a long phase is
        (rolling up a backfill of model outputs)."""
        stats = RefreshStats()
        with timed(stats.seconds, "total"), collector_paused():
            self._refresh(
                engine, stats, recluster=recluster, phase=phase or (lambda _: None), within=within
            )
        log_seconds("refresh", stats.seconds)
        return stats

    def _refresh(
        self,
        engine: Engine,
        stats: RefreshStats,
        *,
        recluster: bool,
        phase: Phase,
        within: Within | None,
    ) -> None:
        seconds = stats.seconds

        @contextmanager
        def step(name: str) -> Iterator[None]:
            phase(name)
            with timed(seconds, name):
                yield

        # Traffic statistics come from rollups: only outputs logged since the last refresh are
        # read here, in short transactions of their own.
        with step("rollup"):
            stats.rolled_up = roll_up(engine, params=self.diagnose_params.signals, progress=within)
        # Short write transactions: on SQLite a write holds the database's one write lock, so
        # reading, deciding and clustering happen outside them and ingestion never waits for
        # more than the writes.
        with step("link"), db.session_scope(engine, write_lock=True) as session:
            # Under the issues lock, as a prune's ranges and partition drops are: an output is
            # never linked while a prune is deleting it.
            store.lock_issues(session)
            similarity = embedding_similarity(self.embedder)
            stats.links = link_pending(session, params=self.link_params, similarity=similarity)
        with db.session_scope(engine) as session:
            with step("load"):
                # In transactions of its own, before this session reads anything.
                stats.reembedded = embed_missing(
                    engine, self.embedder, batch_size=self.settings.embedding_batch_size
                )
                units = load_units(session, model_id=self.embedder.model_id)
                if not units.ids:
                    stats.skipped.append("no processed units yet")
                    return
                memberships = store.membership_map(session)
                stats.unassigned_share = units.unassigned_share(memberships)
                threshold = self.settings.cluster_recluster_unassigned_share
                # Issues formed in another model's vectors form again in this one's (their
                # ids kept by shared units).
                reclustering = (
                    recluster or not count_open(session) or stats.unassigned_share > threshold
                    or stats.reembedded > 0
                )  # fmt: skip
            # Each ticket's own category first: it is part of how issues form.
            with step("categorize"):
                whole_vectors: dict[str, bytes] = {}  # new ones, written with the decisions
                judged = judge_tickets(
                    session, units, self.categorizer, params=self.diagnose_params,
                    model_id=self.embedder.model_id,
                    # Cached by text, so a ticket decided again is not embedded again.
                    embed=lambda texts: embed_cached(
                        session, self.embedder, texts, None,
                        batch_size=self.settings.embedding_batch_size, pending=whole_vectors,
                    ),
                )  # fmt: skip
                stats.decided = len(judged.decided.decided)
        result = None
        if reclustering:
            with step("cluster"):
                clusterer = cluster.Clusterer(self.cluster_params)
                result = clusterer.fit(
                    units.vectors, causes=judged.causes(units), facets=judged.facets(units),
                    contexts=judged.contexts(units),
                )  # fmt: skip
        # Title candidates are embedded through the vector cache, as the whole tickets are:
        # an issue labelled again embeds only the clauses it did not have before. After a
        # re-clustering every issue is labelled, so its clauses are embedded here, before the
        # write transaction (on SQLite, ingestion waits for it), and found there in these.
        title_vectors: dict[str, bytes] = {}

        def embed_titles(session: Session) -> Callable[[list[str]], np.ndarray]:
            return lambda texts: embed_cached(
                session, self.embedder, texts, None,
                batch_size=self.settings.embedding_batch_size, pending=title_vectors,
            )  # fmt: skip

        if result is not None:
            with step("titles"), db.session_scope(engine) as session:
                prefetch_titles(session, units, result.labels, params=self.label_params,
                                embed=embed_titles(session))  # fmt: skip
        with db.session_scope(engine, write_lock=True) as session:
            # One refresh writes at a time; units another worker assigned since the read are
            # kept (their memberships are read again here) or seen by the next refresh.
            store.lock_issues(session)
            store.add_vectors(session, vectors=whole_vectors, model_id=self.embedder.model_id,
                              dim=self.embedder.dim)  # fmt: skip
            memberships = store.membership_map(session)
            if result is not None:
                with step("issues"):
                    stats.lineage = recluster_issues(
                        session, units, result, memberships, params=self.membership_params
                    )
                    memberships = store.membership_map(session)
                stats.reclustered = True
            now = utcnow()
            # Only the issues whose members, their decisions, links or traffic changed are
            # labelled and diagnosed again (``keys``); the others only have their recency moved.
            issues = store.active_issues_by_id(session)
            keys = issue_keys(
                units, units.rows_by_issue(issue_of(memberships)), judged, issues,
                week_end=iso_week_start(now), params=self._params,
            )  # fmt: skip
            changed = changed_issues(issues, keys)
            stats.issues_redone = len(changed)
            with step("label"):
                relabel(session, units, issue_of(memberships), params=self.label_params,
                        only=changed, embed=embed_titles(session))  # fmt: skip
                store.add_vectors(
                    session,
                    vectors=title_vectors,
                    model_id=self.embedder.model_id,
                    dim=self.embedder.dim,
                )
            with step("rank"):
                diagnose(session, units, issue_of(memberships), self.categorizer, judged,
                         params=self.diagnose_params, now=now, keys=keys)  # fmt: skip
            stats.issues = count_open(session)
            stats.unassigned_share = units.unassigned_share(memberships)
            store.record_run(session, kind="recluster" if stats.reclustered else "refresh",
                             stats=asdict(stats))  # fmt: skip
