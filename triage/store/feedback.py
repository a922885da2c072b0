"""Tickets: idempotent ingestion, listing, the processing queue and the export."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from triage.errors import ConflictError, NotFoundError
from triage.models import (
    Feedback,
    FeedbackAccepted,
    FeedbackCreate,
    FeedbackItemResult,
    FeedbackStatus,
    Issue,
    ItemResult,
    Membership,
    Unit,
    as_utc,
    utcnow,
)
from triage.models.feedback import is_uncertain
from triage.store._common import insert_idempotent, paginate, sha256_hex, table_of
from triage.store.audit import record_audit

# What a retry must repeat exactly besides the text (compared by its hash): a changed value is a
# conflict, not a duplicate that silently keeps the old one.
COMPARED_FIELDS = (
    "created_at", "customer_id", "customer_value", "user_id", "session_id", "output_id",
    "metadata",
)  # fmt: skip


def add_feedback_items(
    session: Session, *, items: Sequence[FeedbackCreate]
) -> list[FeedbackItemResult]:
    """Store tickets idempotently on ``(source, external_id)``, one answer per item, in order
    (``index`` is the position in ``items``): stored, duplicate, or a conflict naming the fields
    that differ from the stored ticket. Conflicts store nothing; the other items are written."""
    if not items:
        return []
    rows = [
        {
            "source": item.source,
            "external_id": item.external_id,
            "text": item.text,
            "text_sha256": sha256_hex(item.text),
            "created_at": item.created_at,
            "customer_id": item.customer_id,
            "customer_value": item.customer_value,
            "user_id": item.user_id,
            "session_id": item.session_id,
            "output_id": item.output_id,
            "metadata": item.meta,
            "received_at": utcnow(),
            "status": FeedbackStatus.pending.value,
            "attempts": 0,
        }
        for item in items
    ]
    answers = insert_idempotent(
        session, table=table_of(Feedback), rows=rows, keys=("source", "external_id"),
        digest="text_sha256", compare=COMPARED_FIELDS,
    )  # fmt: skip
    results = []
    for index, (item, answer) in enumerate(zip(items, answers, strict=True)):
        result = FeedbackItemResult(
            index=index, result=ItemResult.stored, source=item.source, external_id=item.external_id
        )
        if answer.conflict:
            # Nothing was written; the id only when that row is there for sure (see Stored.prior).
            result.result = ItemResult.conflict
            result.id = answer.stored["id"] if answer.prior else None
            result.fields = ["text" if f == "text_sha256" else f for f in answer.conflict]
        else:
            result.id, result.status = answer.stored["id"], answer.stored["status"]
            result.duplicate = answer.duplicate
            if answer.duplicate:
                result.result = ItemResult.duplicate
        results.append(result)
    return results


def conflict_error(
    conflicts: Sequence[FeedbackItemResult], *, stored_nothing: bool
) -> ConflictError:
    """The 409 for items that reuse a stored (source, external_id) with other content."""
    fields = sorted({f for c in conflicts for f in c.fields})
    tail = " Nothing from this request was stored." if stored_nothing else ""
    return ConflictError(
        f"{len(conflicts)} item(s) reuse a (source, external_id) that is already stored with "
        f"other values ({', '.join(fields)}). Feedback is immutable: send it unchanged, or "
        f"under a new external_id.{tail}",
        details={
            "conflicts": [
                c.model_dump(include={"index", "source", "external_id", "id", "fields"})
                for c in conflicts
            ]
        },
    )


def add_feedback(session: Session, *, items: Sequence[FeedbackCreate]) -> list[FeedbackAccepted]:
    """All or nothing: store every item, or raise ``ConflictError`` when one conflicts (the
    caller's transaction then rolls back). For webhooks and files, whose senders retry whole."""
    results = add_feedback_items(session, items=items)
    conflicts = [r for r in results if r.result is ItemResult.conflict]
    if conflicts:
        raise conflict_error(conflicts, stored_nothing=True)
    shown = {"id", "source", "external_id", "status", "duplicate"}
    return [FeedbackAccepted.model_validate(r.model_dump(include=shown)) for r in results]


def list_feedback(
    session: Session,
    *,
    source: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Feedback], int]:
    conditions = []
    if source is not None:
        conditions.append(col(Feedback.source) == source)
    if status is not None:
        conditions.append(col(Feedback.status) == status)
    if since is not None:
        # In UTC: SQLite compares datetimes as text, without their offsets.
        conditions.append(col(Feedback.received_at) >= as_utc(since))
    return paginate(session, Feedback, conditions, (col(Feedback.id),), limit=limit, offset=offset)


def get_feedback(session: Session, *, feedback_id: int) -> Feedback:
    feedback = session.get(Feedback, feedback_id)
    if feedback is None:
        raise NotFoundError(f"No feedback with id {feedback_id}.")
    return feedback


def issue_ids_by_feedback(session: Session, *, feedback_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each ticket's issues, the one holding most of its units first (its main issue)."""
    if not feedback_ids:
        return {}
    statement = (
        select(Unit.feedback_id, Membership.issue_id, func.count())
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Unit.feedback_id).in_(list(feedback_ids)))
        .group_by(col(Unit.feedback_id), col(Membership.issue_id))
    )
    counts: dict[int, list[tuple[int, int]]] = {}
    for feedback_id, issue_id, count in session.exec(statement):
        counts.setdefault(feedback_id, []).append((count, issue_id))
    return {
        feedback_id: [issue_id for _, issue_id in sorted(pairs, key=lambda p: (-p[0], p[1]))]
        for feedback_id, pairs in counts.items()
    }


def claim_pending(session: Session, *, limit: int) -> list[Any]:
    """Lock up to ``limit`` pending tickets for this transaction: rows of (id, text, attempts),
    to be written back with ``update_feedback``.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers claim disjoint batches; on
    SQLite the caller's session holds the write lock (``session_scope(write_lock=True)``). A
    worker killed mid-batch never commits, so its tickets simply stay pending.
    """
    statement = (
        select(Feedback.id, Feedback.text, Feedback.attempts)
        .where(col(Feedback.status) == FeedbackStatus.pending.value)
        .order_by(col(Feedback.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return list(session.exec(statement).all())


def still_pending(session: Session, attempts: Mapping[int, int]) -> set[int]:
    """Of the tickets in ``attempts`` (id -> attempts when read), those still pending with the
    same count: nobody processed them since."""
    if not attempts:
        return set()
    rows = session.exec(
        select(Feedback.id, Feedback.attempts).where(
            col(Feedback.id).in_(list(attempts)),
            col(Feedback.status) == FeedbackStatus.pending.value,
        )
    )
    return {feedback_id for feedback_id, count in rows if attempts[feedback_id] == count}  # type: ignore[index,misc]


def update_feedback(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Write processing results, one dict of changed fields per ticket, keyed by ``id``
    (an UPDATE by primary key, executed once per set of fields)."""
    if rows:
        session.execute(update(Feedback), list(rows))


def stored_decisions(session: Session) -> list[tuple[Any, ...]]:
    """(feedback id, key, category, confidence, probabilities, evidence) of every ticket a
    refresh decided, with what it decided from (``category_key``)."""
    return list(
        session.exec(
            select(  # type: ignore[call-overload, misc]
                Feedback.id,
                Feedback.category_key,
                Feedback.category,
                Feedback.category_confidence,
                Feedback.category_probabilities,
                Feedback.category_evidence,
            ).where(col(Feedback.category_key).is_not(None))
        ).all()
    )


def count_feedback_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(select(Feedback.status, func.count()).group_by(col(Feedback.status)))
    return {status: int(count) for status, count in rows}


def requeue_failed(session: Session) -> int:
    result = session.exec(
        update(Feedback)
        .where(col(Feedback.status) == FeedbackStatus.failed.value)
        .values(status=FeedbackStatus.pending.value)
    )
    return int(result.rowcount or 0)


def requeue_feedback(
    session: Session, *, feedback_id: int, api_key_id: int | None, actor: str
) -> bool:
    """Put one failed ticket back in the queue, as ``triage run --retry-failed`` does for all;
    False when it is not failed (already retried, or never failed)."""
    result = session.exec(
        update(Feedback)
        .where(col(Feedback.id) == feedback_id, col(Feedback.status) == FeedbackStatus.failed.value)
        .values(status=FeedbackStatus.pending.value)
    )
    if not result.rowcount:
        return False
    record_audit(
        session,
        action="feedback.retry",
        target_type="feedback",
        target_id=feedback_id,
        before={"status": FeedbackStatus.failed.value},
        after={"status": FeedbackStatus.pending.value},
        api_key_id=api_key_id,
        actor=actor,
    )
    return True


def export_feedback(session: Session, *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """One row per ticket, in id order: its own ``category`` (and confidence), its main issue
    and that issue's category (``issue_category``).

    Only redacted text leaves the database. Streams in chunks so a large export stays small in
    memory.
    """
    categories = dict(session.exec(select(Issue.id, Issue.category)).all())
    last_id = 0
    while True:
        rows = session.exec(
            select(Feedback)
            .where(col(Feedback.id) > last_id)
            .order_by(col(Feedback.id))
            .limit(chunk)
        ).all()
        if not rows:
            return
        issues = issue_ids_by_feedback(session, feedback_ids=[row.id for row in rows])  # type: ignore[misc]
        for row in rows:
            issue_ids = issues.get(row.id, [])  # type: ignore[arg-type]
            main = issue_ids[0] if issue_ids else None
            yield {
                "id": row.id,
                "external_id": row.external_id,
                "source": row.source,
                "status": row.status,
                "issue_id": main,
                "issue_ids": issue_ids,
                "category": row.category,
                "category_confidence": row.category_confidence,
                "category_uncertain": is_uncertain(row.category_evidence),
                "issue_category": categories.get(main) if main is not None else None,
                "created_at": row.created_at,
                "customer_id": row.customer_id,
                "text": row.redacted_text,
                "last_error": row.last_error,
            }
        last_id = rows[-1].id  # type: ignore[assignment]
