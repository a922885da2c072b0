"""Retention of logged model outputs: which are old and linked to no ticket, and deleting them in
id ranges (``triage.retention`` runs the ranges, one short transaction each), or on PostgreSQL
a whole month at a time (``store.partitions``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_
from sqlmodel import Session, col, select

from triage.models import Feedback, Link, ModelOutput, PipelineRun, as_utc
from triage.store.partitions import Month, drop_month, forget_keys, highest_id, keep_rows


def _old(cutoff: datetime) -> ColumnElement[bool]:
    # Old by both clocks: a backfill of last year's outputs gets a full retention period from its
    # arrival to be linked, instead of vanishing at the next prune.
    return and_(
        col(ModelOutput.received_at) < cutoff,
        or_(col(ModelOutput.created_at).is_(None), col(ModelOutput.created_at) < cutoff),
    )


def _unlinked() -> ColumnElement[bool]:
    # Linked: a link row (the refresh decided), or a ticket naming its output_id (a ticket whose
    # links are not decided yet must still find it).
    linked = exists().where(col(Link.model_output_id) == col(ModelOutput.id))
    named = exists().where(col(Feedback.output_id) == col(ModelOutput.output_id))
    return and_(~linked, ~named)


def _stays(cutoff: datetime) -> ColumnElement[bool]:
    # For outputs that arrived before ``cutoff``, not (old and unlinked) as above, written as
    # uncorrelated subqueries the planner hashes once: a month of millions is one scan.
    return or_(
        col(ModelOutput.created_at) >= cutoff,
        col(ModelOutput.id).in_(select(Link.model_output_id)),
        col(ModelOutput.output_id).in_(
            select(Feedback.output_id).where(col(Feedback.output_id).is_not(None))
        ),
    )


def old_output_ids(
    session: Session, *, cutoff: datetime, after_id: int, limit: int, max_id: int
) -> list[int]:
    """Ids above ``after_id``, up to ``max_id`` (the rollups' watermark: only outputs already
    rolled up may go), of outputs older than ``cutoff``, linked or not, in id order: the next
    range to prune. Walks the primary key, so ranges cost what they cover."""
    return list(
        session.exec(
            select(ModelOutput.id)
            .where(col(ModelOutput.id) > after_id, col(ModelOutput.id) <= max_id, _old(cutoff))
            .order_by(col(ModelOutput.id))
            .limit(limit)
        ).all()  # type: ignore[arg-type]
    )


def delete_unlinked_outputs(
    session: Session, *, cutoff: datetime, first_id: int, last_id: int
) -> int:
    """Delete the outputs with ids in ``[first_id, last_id]`` that are older than ``cutoff`` and
    linked to no ticket; the number deleted. Checked in the delete itself, so a link made since
    the ids were read keeps its output."""
    deleted = session.execute(
        delete(ModelOutput)
        .where(
            col(ModelOutput.id) >= first_id,
            col(ModelOutput.id) <= last_id,
            _old(cutoff),
            _unlinked(),
        )
        .returning(col(ModelOutput.id))
        .execution_options(synchronize_session=False)
    )
    ids = list(deleted.scalars())
    forget_keys(session, ids=ids)
    return len(ids)


def prune_month(session: Session, *, month: Month, cutoff: datetime, max_id: int) -> int | None:
    """PostgreSQL: drop ``month``'s partition (wholly older than ``cutoff``) once the outputs
    that must stay (linked, named by a ticket, or created since ``cutoff``) are moved to the
    kept partition; how many outputs went, or None if some are not rolled up to ``max_id``
    yet. Call it under the issues lock; a link made meanwhile to an output being dropped fails
    it (the link's foreign key), and nothing is dropped."""
    if highest_id(session, month=month) > max_id:
        return None
    keep_rows(session, month=month, where=_stays(cutoff))
    return drop_month(session, month=month)


def count_prunable_outputs(session: Session, *, cutoff: datetime) -> int:
    """How many outputs a prune at ``cutoff`` would delete now."""
    return int(
        session.exec(
            select(func.count()).select_from(ModelOutput).where(_old(cutoff), _unlinked())
        ).one()
    )


def last_run_at(session: Session, *, kind: str) -> datetime | None:
    """When the newest recorded run of ``kind`` started, or None."""
    started = session.exec(
        select(func.max(PipelineRun.started_at)).where(col(PipelineRun.kind) == kind)
    ).one()
    return as_utc(started)
