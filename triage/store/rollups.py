"""Traffic rollups (``output_rollup``) and how far they have read (``rollup_watermark``); the
outputs a roll-up reads, and the linked outputs a refresh reads row by row.

Ids and commits: on PostgreSQL a transaction that took id 100 can commit after one that took
101, so "every id up to the highest committed one" is not yet every output below it. Every
insert of outputs therefore holds a shared transaction-level advisory lock
(``lock_output_inserts``), and ``committed_output_id`` takes the same lock exclusively for an
instant: while it holds it no insert is in flight, so no id at or below the highest it reads can
still appear. SQLite has one writer at a time and gives a new row the next id, so there the
highest committed id is always safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, text
from sqlmodel import Session, col, select

from triage.models import ModelOutput, OutputRollup, RollupWatermark, utcnow
from triage.store._common import dialect_insert, table_of

# Distinct from the issue locks' keys (7273, 7274 in ``issues`` and ``locks``).
OUTPUT_INSERT_LOCK_KEY = 7275
WATERMARK = "model_output"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_output_inserts(session: Session) -> None:
    """Taken by every transaction that inserts outputs, before the insert (PostgreSQL; a no-op
    on SQLite). Shared: inserts never wait for each other, only for ``committed_output_id``."""
    if _postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": OUTPUT_INSERT_LOCK_KEY}
        )


def committed_output_id(session: Session) -> int:
    """The highest output id no insert in flight can go below: every output up to it is
    committed or will never exist. Call it in a transaction of its own (on PostgreSQL it holds
    off new inserts until that transaction ends)."""
    if _postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OUTPUT_INSERT_LOCK_KEY})
    return int(session.exec(select(func.max(ModelOutput.id))).one() or 0)


def rollup_watermark(session: Session, *, for_update: bool = False) -> int:
    """Every output with an id up to this is rolled up. ``for_update`` locks the watermark until
    the transaction ends, so two roll-ups never merge the same outputs."""
    statement = select(RollupWatermark).where(col(RollupWatermark.name) == WATERMARK)
    if for_update:
        statement = statement.with_for_update()
    if for_update:
        # Made on first use; two first roll-ups at once both find it made.
        session.execute(
            dialect_insert(session, table_of(RollupWatermark))
            .values(name=WATERMARK, last_output_id=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
    row = session.exec(statement).first()
    return row.last_output_id if row is not None else 0


def set_rollup_watermark(
    session: Session, *, last_output_id: int, sketch: dict[str, Any] | None = None
) -> None:
    """Move the watermark; with ``sketch``, also store the merge of every rollup row's sketch
    (``rollup_sketch``), in the transaction that wrote the rows."""
    row = session.get(RollupWatermark, WATERMARK) or RollupWatermark(name=WATERMARK)
    row.last_output_id = last_output_id
    if sketch is not None:
        row.sketch = sketch
    row.updated_at = utcnow()
    session.add(row)


def rollup_sketch(session: Session) -> dict[str, Any] | None:
    """The merge of every rollup row's sketch as stored with the watermark; None when it is not
    made yet (no roll-up since migration 0009) and the rows must be merged instead."""
    sketch = session.exec(
        select(RollupWatermark.sketch).where(col(RollupWatermark.name) == WATERMARK)
    ).first()
    return dict(sketch) if sketch is not None else None


def lower_rollup_watermark(session: Session) -> None:
    """After a prune: if the newest outputs were deleted, bring the watermark down to the
    highest id left. SQLite gives a new row the highest id plus one, so a deleted id can come
    back; it must be above the watermark to be rolled up. (Nothing between is lost: no output
    is left there.)"""
    highest = int(session.exec(select(func.max(ModelOutput.id))).one() or 0)
    if highest < rollup_watermark(session):
        set_rollup_watermark(session, last_output_id=highest)


def outputs_to_roll_up(
    session: Session, *, after_id: int, until_id: int | None = None, limit: int | None = None
) -> list[Any]:
    """Up to ``limit`` outputs with ids in ``(after_id, until_id]`` (None: no bound), in id
    order: rows of the fields a rollup reads (``has_output`` instead of the output's text)."""
    has_output = case(
        (and_(col(ModelOutput.output).is_not(None), col(ModelOutput.output) != ""), True),
        else_=False,
    )
    bounds = [col(ModelOutput.id) > after_id]
    if until_id is not None:
        bounds.append(col(ModelOutput.id) <= until_id)
    return list(
        session.exec(
            select(  # type: ignore[call-overload, misc]
                ModelOutput.id,
                ModelOutput.output_id,
                ModelOutput.created_at,
                ModelOutput.received_at,
                ModelOutput.model,
                ModelOutput.model_version,
                ModelOutput.feature,
                ModelOutput.confidence,
                ModelOutput.latency_ms,
                ModelOutput.meta,
                has_output.label("has_output"),
            )
            .where(*bounds)
            .order_by(col(ModelOutput.id))
            .limit(limit)
        ).all()
    )


def output_rollups(session: Session, *, days: Iterable[date] | None = None) -> list[OutputRollup]:
    """Every rollup row, or those of ``days``."""
    statement = select(OutputRollup).order_by(col(OutputRollup.id))
    if days is not None:
        wanted = sorted(set(days))
        if not wanted:
            return []
        statement = statement.where(col(OutputRollup.day).in_(wanted))
    return list(session.exec(statement).all())


def rollup_sketch_missing(session: Session) -> bool:
    """Whether rollups were made without their merge (before migration 0009): the watermark
    row is there, its sketch is not. Reads no sketch."""
    statement = select(RollupWatermark.name).where(
        col(RollupWatermark.name) == WATERMARK, col(RollupWatermark.sketch).is_(None)
    )
    return session.exec(statement).first() is not None


def rollup_counts(session: Session) -> list[Any]:
    """Every rollup row's day, model, version, feature and count, without its sketch."""
    return list(
        session.exec(
            select(  # type: ignore[call-overload]
                OutputRollup.day,
                OutputRollup.model,
                OutputRollup.model_version,
                OutputRollup.feature,
                OutputRollup.n,
            ).order_by(col(OutputRollup.id))
        ).all()
    )


def save_rollups(session: Session, *, rows: Sequence[OutputRollup]) -> None:
    for row in rows:
        row.updated_at = utcnow()
        session.add(row)


def model_outputs_by_id(session: Session, *, ids: Iterable[int]) -> list[ModelOutput]:
    """The outputs with these ids (those still stored), in id order; chunked for the drivers'
    parameter limits."""
    wanted = sorted(set(ids))
    found: list[ModelOutput] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found += session.exec(select(ModelOutput).where(col(ModelOutput.id).in_(chunk))).all()
    return sorted(found, key=lambda o: o.id or 0)
