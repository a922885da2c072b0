"""Retention: model outputs linked to no ticket are deleted once ``TRIAGE_OUTPUT_RETENTION_DAYS``
old; outputs linked to feedback stay as long as their tickets.

An LLM product logs far more outputs than it gets tickets, and only the linked ones are evidence
row by row; every output, pruned or not, still counts in traffic through the rollups
(``triage.rollups``), which a prune brings up to date first and never deletes past.
``triage db prune`` runs this, and so does the worker, at most once a day. Deleting goes in id
ranges of ``chunk`` rows, each its own short transaction under the issues lock
(``store.lock_issues``), so a prune of millions never holds a long transaction, never races the
refresh that makes links, and lets ingestion in between its ranges on SQLite.

On PostgreSQL ``model_output`` is partitioned by month of arrival (migration 0007): a month
wholly older than the cutoff and rolled up is dropped as a table, in one transaction under the
same lock, once the outputs that must stay (linked, named, or created since the cutoff) are
moved to the kept partition. The id ranges then delete what is left: the month the cutoff falls
in, the default partition, and kept outputs whose tickets are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from triage import db, store
from triage.link import SignalParams
from triage.models import utcnow
from triage.rollups import roll_up

logger = logging.getLogger("triage.retention")

PRUNE_KIND = "prune"
PRUNE_EVERY = timedelta(days=1)
# A month's drop gives way and is tried again at the next prune: lock_not_available (its
# lock_timeout) and deadlock_detected, to ingestion; foreign_key_violation, to a link made to one
# of its outputs meanwhile (the refresh's link step takes the issues lock too, so only a writer
# outside it could; the foreign key makes that a failed drop, never a link to nothing).
DROP_GIVES_WAY = ("55P03", "40P01", "23503")


@dataclass(frozen=True)
class PruneResult:
    retention_days: int
    cutoff: datetime | None  # None: retention is off (0 days)
    deleted: int
    partitions_dropped: int | None = None  # None: the table is not partitioned (SQLite)


def cutoff_for(days: int, *, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


def prune_outputs(
    engine: Engine,
    *,
    retention_days: int,
    now: datetime | None = None,
    chunk: int = 5000,
    record: bool = True,
    signals: SignalParams | None = None,
) -> PruneResult:
    """Delete the model outputs older than ``retention_days`` (by both their ``created_at`` and
    their arrival) that no ticket links to or names, once rolled up (``triage.rollups``, with
    ``signals``: the refresh's ``SignalParams``); 0 days deletes nothing. The run is recorded
    in ``pipeline_run`` (kind ``prune``) unless ``record`` is False."""
    if retention_days <= 0:
        return PruneResult(retention_days, None, 0)
    cutoff = cutoff_for(retention_days, now=now)
    # What is deleted lives on in the rollups: roll up first, delete only what is rolled up.
    roll_up(engine, params=signals or SignalParams())
    deleted, dropped = _drop_old_months(engine, cutoff=cutoff)
    after_id = 0
    while True:
        with db.session_scope(engine, write_lock=True) as session:
            store.lock_issues(session)
            rolled_up = store.rollup_watermark(session, for_update=True)
            ids = store.old_output_ids(
                session, cutoff=cutoff, after_id=after_id, limit=chunk, max_id=rolled_up
            )
            if ids:
                deleted += store.delete_unlinked_outputs(
                    session, cutoff=cutoff, first_id=ids[0], last_id=ids[-1]
                )
                store.lower_rollup_watermark(session)
        if len(ids) < chunk:
            break
        after_id = ids[-1]
    if record:
        with db.session_scope(engine) as session:
            store.record_run(session, kind=PRUNE_KIND, stats={
                "retention_days": retention_days, "cutoff": cutoff.isoformat(),
                "deleted": deleted, "partitions_dropped": dropped,
            })  # fmt: skip
    logger.info("pruned %d model outputs older than %d days", deleted, retention_days)
    return PruneResult(retention_days, cutoff, deleted, dropped)


def _drop_old_months(engine: Engine, *, cutoff: datetime) -> tuple[int, int | None]:
    """PostgreSQL: drop the month partitions wholly older than ``cutoff`` (``store.prune_month``),
    each in a transaction of its own; the outputs that went and the partitions dropped (None
    when the table is not partitioned). A month with outputs not rolled up yet, or whose drop
    waited too long for inserts in flight, is left to the id ranges."""
    with db.session_scope(engine) as session:
        if not store.partitioned(session):
            return 0, None
        months = store.months_before(session, cutoff=cutoff)
    deleted, dropped = 0, 0
    for month in months:
        try:
            with db.session_scope(engine) as session:
                store.lock_issues(session)
                rolled_up = store.rollup_watermark(session, for_update=True)
                gone = store.prune_month(session, month=month, cutoff=cutoff, max_id=rolled_up)
        except DBAPIError as e:
            if getattr(e.orig, "sqlstate", None) not in DROP_GIVES_WAY:
                raise
            logger.warning("partition %s not dropped (%s); pruned row by row", month.name, e.orig)
            continue
        if gone is not None:
            deleted, dropped = deleted + gone, dropped + 1
            logger.info("dropped partition %s: %d model outputs", month.name, gone)
    return deleted, dropped


def count_prunable(engine: Engine, *, retention_days: int, now: datetime | None = None) -> int:
    if retention_days <= 0:
        return 0
    with db.session_scope(engine) as session:
        return store.count_prunable_outputs(session, cutoff=cutoff_for(retention_days, now=now))


def prune_due(engine: Engine, *, now: datetime | None = None) -> bool:
    """True when no prune was recorded in the last day."""
    with db.session_scope(engine) as session:
        last = store.last_run_at(session, kind=PRUNE_KIND)
    return last is None or (now or utcnow()) - last >= PRUNE_EVERY
