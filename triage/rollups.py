"""Where traffic rollups meet the database: ``roll_up`` merges the outputs logged since the last
roll-up into their (day, model, version, feature) rows, and ``load_traffic`` builds the refresh's
``TrafficProfile`` from the rollups alone.

A roll-up reads outputs above the watermark in id ranges of ``batch`` rows; each range is merged
and the watermark advanced in one transaction (the watermark row locked), so a range is counted
once even if a roll-up dies half way or two run at once. It never reads past
``store.committed_output_id``, so an insert still in flight is rolled up next time, not skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from triage import db, store
from triage.link import OutputRecord, SignalParams, TrafficProfile
from triage.link.rollup import Histogram, RollupRow, Sketch, rollup_outputs
from triage.models import OutputRollup, as_utc

logger = logging.getLogger(__name__)


def _record(row: Any) -> OutputRecord:
    return OutputRecord(
        id=row.id,
        output_id=row.output_id,
        created_at=as_utc(row.created_at or row.received_at),
        model=row.model,
        model_version=row.model_version,
        feature=row.feature,
        # Only whether there was an output matters to a rollup (``missing_fields``).
        output="-" if row.has_output else None,
        confidence=row.confidence,
        latency_ms=row.latency_ms,
        meta=row.meta,
    )


def roll_up(
    engine: Engine,
    *,
    params: SignalParams,
    batch: int = 5000,
    lock_wait: float = 5.0,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Merge every committed output not rolled up yet into the rollups; returns how many.

    Each range is read and sketched outside any write lock (on SQLite ingestion never waits for
    the sketching), then merged in a short write transaction that first checks the watermark has
    not moved; if another roll-up moved it, the range is read again from the new watermark.
    On PostgreSQL, waiting more than ``lock_wait`` seconds for inserts in flight skips the
    roll-up (new inserts wait behind it): ``load_traffic`` still reads what is not rolled up.
    ``progress(done, total)`` after each range: outputs rolled up, and of about how many (the
    id range: ids above the watermark are dense but for failed inserts). A roll-up of more than
    a tenth of the stored outputs (a backfill) ends with PostgreSQL's ANALYZE of them
    (``store.analyze_outputs``), so the refresh's reads by id that follow use their index."""
    try:
        with db.session_scope(engine, lock_wait=lock_wait) as session:
            # PostgreSQL's coming months' partitions (``store.partitions``), made here so that
            # no insert ever has to.
            store.ensure_partitions(session)
    except OperationalError:
        logger.warning("partitions not made: inserts of model outputs held them up; next time")
    try:
        with db.session_scope(engine, lock_wait=lock_wait) as session:
            until = store.committed_output_id(session)
    except OperationalError:
        logger.warning("roll-up skipped: inserts of model outputs held it up; next refresh")
        return 0
    _store_merged_rollups(engine)
    sources: dict[str, Histogram] | None = None  # all rollups' source ages, read once
    rolled, total = 0, None
    while True:
        with db.session_scope(engine) as session:
            after = store.rollup_watermark(session)
            if after >= until:  # nothing new (no write, no write lock), or all done
                break
            total = until - after if total is None else total
            rows = store.outputs_to_roll_up(session, after_id=after, until_id=until, limit=batch)
            if sources is None:
                sources = _merged_rollups(session).sources
        sketched, merged = rollup_outputs([_record(r) for r in rows], params, sources)
        last = until if len(rows) < batch else rows[-1].id
        with db.session_scope(engine, write_lock=True) as session:
            if store.rollup_watermark(session, for_update=True) != after:
                continue  # another roll-up merged this range meanwhile
            # Read under the lock: the merge kept with the watermark stays exactly the rows'.
            kept = Sketch.merged([_merged_rollups(session), *(row.sketch for row in sketched)])
            _merge(session, sketched)
            store.set_rollup_watermark(session, last_output_id=last, sketch=kept.to_json())
        sources, rolled = merged, rolled + len(rows)
        if progress is not None and total:
            progress(min(rolled, total), total)
    if not rolled:
        return 0
    logger.info("rolled up %d model outputs", rolled)
    try:
        with db.session_scope(engine, lock_wait=lock_wait) as session:
            store.analyze_outputs(session, added=rolled)
    except OperationalError:
        logger.warning("model outputs not analyzed: a prune or another analyze held them up")
    return rolled


def _merged_rollups(session: Session) -> Sketch:
    """The merge of every rollup row's sketch: the one stored with the watermark, or the rows'
    own merged when it is not made yet."""
    stored = store.rollup_sketch(session)
    if stored is not None:
        return Sketch.from_json(stored)
    return Sketch.merged([Sketch.from_json(r.sketch) for r in store.output_rollups(session)])


def _store_merged_rollups(engine: Engine) -> None:
    """Rolled up before migration 0009, a database has rollup rows but not their merge: made
    once here, so that a refresh with nothing new to roll up reads it too."""
    with db.session_scope(engine) as session:
        if not store.rollup_sketch_missing(session):
            return
    with db.session_scope(engine, write_lock=True) as session:
        after = store.rollup_watermark(session, for_update=True)
        if store.rollup_sketch_missing(session):
            store.set_rollup_watermark(
                session, last_output_id=after, sketch=_merged_rollups(session).to_json()
            )


def _merge(session: Session, batch: list[RollupRow]) -> None:
    """Add a batch's rollup rows to the stored ones (the same day, model, version, feature)."""
    stored = {
        (r.day, r.model, r.model_version, r.feature): r
        for r in store.output_rollups(session, days={row.day for row in batch})
    }
    changed = []
    for new in batch:
        key = (new.day, new.model, new.model_version or "", new.feature or "")
        row = stored.get(key) or OutputRollup(
            day=key[0], model=key[1], model_version=key[2], feature=key[3]
        )
        row.sketch = Sketch.merged([Sketch.from_json(row.sketch), new.sketch]).to_json()
        row.n = (row.n or 0) + new.n
        changed.append(row)
    store.save_rollups(session, rows=changed)


def load_traffic(session: Session, *, params: SignalParams) -> TrafficProfile:
    """All traffic: the rollups, and the outputs above the watermark read row by row (none
    after ``roll_up``; a caller that skipped it still sees every output). Of the rollups only
    their counts and the merge of their sketches stored with the watermark are read: the rows'
    sketches fill more bins as traffic grows, and parsing and merging them all took a refresh
    0.6 s at a million outputs (``bench.refresh``), reading the merge 0.05 s."""
    stored = store.rollup_sketch(session)
    if stored is None:  # not made yet: no roll-up since migration 0009
        rows = [
            RollupRow(
                day=r.day, model=r.model, model_version=r.model_version or None,
                feature=r.feature or None, n=r.n, sketch=Sketch.from_json(r.sketch),
            )
            for r in store.output_rollups(session)
        ]  # fmt: skip
        total = Sketch.merged([row.sketch for row in rows])
    else:
        rows = [
            RollupRow(day=r.day, model=r.model, model_version=r.model_version or None,
                      feature=r.feature or None, n=r.n)
            for r in store.rollup_counts(session)
        ]  # fmt: skip
        total = Sketch.from_json(stored)
    after = store.rollup_watermark(session)
    pending = store.outputs_to_roll_up(session, after_id=after)
    if pending:
        new = rollup_outputs([_record(r) for r in pending], params, total.sources)[0]
        rows += new
        total = Sketch.merged([total, *(row.sketch for row in new)])
    return TrafficProfile.from_rollups(rows, params, total)
