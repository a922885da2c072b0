"""The weekly digest: the figures it reports, and its storage and delivery claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from triage.models import (
    AuditLog,
    Digest,
    Feedback,
    Issue,
    Link,
    Membership,
    ModelOutput,
    Unit,
    as_utc,
)
from triage.store._common import dialect_insert, table_of


def feedback_time() -> Any:
    """When a ticket was written: the source's created_at, else when we received it."""
    return func.coalesce(col(Feedback.created_at), col(Feedback.received_at))


def _feedback_between(start: datetime, end: datetime) -> list[Any]:
    when = feedback_time()
    return [when >= start, when < end]


def digest_feedback_figures(session: Session, *, start: datetime, end: datetime) -> dict[str, int]:
    """Tickets written in [start, end), their distinct customers, how many are linked to a
    model output, and their units with how many of those are in no issue."""
    period = _feedback_between(start, end)
    tickets, customers = session.exec(
        select(func.count(), func.count(func.distinct(col(Feedback.customer_id)))).where(*period)
    ).one()
    linked = session.exec(
        select(func.count())
        .select_from(Feedback)
        .where(*period, exists().where(col(Link.feedback_id) == col(Feedback.id)))
    ).one()
    units, assigned = session.exec(
        select(func.count(col(Unit.id)), func.count(col(Membership.unit_id)))
        .select_from(Unit)
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .outerjoin(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(*period)
    ).one()
    return {
        "tickets": int(tickets),
        "customers": int(customers),
        "linked": int(linked),
        "units": int(units),
        "unassigned": int(units) - int(assigned),
    }


def digest_issue_volumes(session: Session, *, start: datetime, end: datetime) -> dict[int, int]:
    """Distinct tickets per issue written in [start, end); a ticket with two statements in one
    issue counts once."""
    rows = session.exec(
        select(Membership.issue_id, func.count(func.distinct(col(Unit.feedback_id))))
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(*_feedback_between(start, end))
        .group_by(col(Membership.issue_id))
    )
    return {issue_id: int(count) for issue_id, count in rows}


def digest_category_volumes(
    session: Session, *, start: datetime, end: datetime
) -> dict[str | None, int]:
    """Statements (units) in issues, per issue category, written in [start, end)."""
    rows = session.exec(
        select(Issue.category, func.count())
        .select_from(Membership)
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .join(Issue, col(Issue.id) == col(Membership.issue_id))
        .where(*_feedback_between(start, end))
        .group_by(col(Issue.category))
    )
    return {category: int(count) for category, count in rows}


def digest_issue_first_seen(session: Session) -> dict[int, datetime]:
    """When each issue's earliest ticket was written."""
    rows = session.exec(
        select(Membership.issue_id, func.min(feedback_time()))
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .group_by(col(Membership.issue_id))
    )
    return {issue_id: first for issue_id, first in rows if first is not None}


def digest_issues(session: Session) -> list[Issue]:
    """Every issue, merged ones included (corrections name them), without centroids."""
    return list(
        session.exec(select(Issue).options(defer(Issue.centroid)).order_by(col(Issue.id))).all()  # type: ignore[arg-type]
    )


def digest_linked_examples(
    session: Session, *, issue_id: int, end: datetime, limit: int
) -> list[tuple[ModelOutput, Link, datetime]]:
    """The model outputs linked to the issue's tickets written before ``end``, each once with
    its surest link and when that ticket was written: the newest tickets first, at most
    ``limit``. The digest picks its examples among them."""
    tickets = (
        select(Unit.feedback_id)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Membership.issue_id) == issue_id)
    )
    when = feedback_time()
    rows = session.exec(
        select(ModelOutput, Link, when)
        .join(Link, col(Link.model_output_id) == col(ModelOutput.id))
        .join(Feedback, col(Feedback.id) == col(Link.feedback_id))
        .where(col(Link.feedback_id).in_(tickets), when < end)
        .order_by(when.desc(), col(Link.confidence).desc(), col(Link.id))
        .limit(limit * 2)
    ).all()
    found: dict[int, tuple[ModelOutput, Link, datetime]] = {}
    for output, link, written in rows:
        seen = found.get(output.id)  # type: ignore[arg-type]
        if seen is None or link.confidence > seen[1].confidence:
            found[output.id] = (output, link, as_utc(written))  # type: ignore[index]
    return list(found.values())[:limit]


def digest_recent_unit_texts(
    session: Session, *, issue_id: int, end: datetime, limit: int
) -> list[str]:
    """The issue's newest distinct redacted statements written before ``end``."""
    when = feedback_time()
    texts = session.exec(
        select(Unit.text)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(col(Membership.issue_id) == issue_id, when < end)
        .order_by(when.desc(), col(Unit.id))
        .limit(limit * 10)
    ).all()
    return list(dict.fromkeys(texts))[:limit]


def digest_audit_entries(session: Session, *, start: datetime, end: datetime) -> list[AuditLog]:
    """People's changes to issues in [start, end), oldest first."""
    return list(
        session.exec(
            select(AuditLog)
            .where(
                col(AuditLog.target_type) == "issue",
                col(AuditLog.at) >= start,
                col(AuditLog.at) < end,
            )
            .order_by(col(AuditLog.at), col(AuditLog.id))
        ).all()
    )


def digest_model_traffic(
    session: Session, *, start: datetime, end: datetime
) -> dict[tuple[str, str | None], int]:
    """Outputs made in [start, end) per (model, model_version)."""
    when = func.coalesce(col(ModelOutput.created_at), col(ModelOutput.received_at))
    rows = session.exec(
        select(ModelOutput.model, ModelOutput.model_version, func.count())
        .where(when >= start, when < end)
        .group_by(col(ModelOutput.model), col(ModelOutput.model_version))
    )
    return {(model, version): int(count) for model, version, count in rows}


def digest_model_complaints(
    session: Session, *, start: datetime, end: datetime
) -> dict[tuple[str, str | None], int]:
    """Distinct tickets written in [start, end) linked to an output, per (model, version)."""
    rows = session.exec(
        select(
            ModelOutput.model,
            ModelOutput.model_version,
            func.count(func.distinct(col(Link.feedback_id))),
        )
        .join(Link, col(Link.model_output_id) == col(ModelOutput.id))
        .join(Feedback, col(Feedback.id) == col(Link.feedback_id))
        .where(*_feedback_between(start, end))
        .group_by(col(ModelOutput.model), col(ModelOutput.model_version))
    )
    return {(model, version): int(count) for model, version, count in rows}


def get_digest(session: Session, *, week: str, fmt: str) -> Digest | None:
    return session.exec(
        select(Digest)
        .where(col(Digest.week) == week, col(Digest.format) == fmt)
        .execution_options(populate_existing=True)
    ).first()


def save_digest(
    session: Session,
    *,
    week: str,
    fmt: str,
    content: str,
    summary: dict[str, Any],
    generated_at: datetime,
    replace: bool = False,
) -> Digest:
    """Store a digest once per (week, format) and return the stored row.

    Without ``replace`` a digest already stored wins, so two processes generating the same
    week at once both end up returning the same row; with it, content and summary are
    replaced and ``delivered_at`` is kept.
    """
    values = {
        "week": week,
        "format": fmt,
        "content": content,
        "summary": summary,
        "generated_at": generated_at,
    }
    statement = dialect_insert(session, table_of(Digest)).values(**values)
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=["week", "format"],
            set_={k: values[k] for k in ("content", "summary", "generated_at")},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["week", "format"])
    session.execute(statement)
    stored = get_digest(session, week=week, fmt=fmt)
    assert stored is not None
    return stored


def claim_digest_delivery(
    session: Session, *, digest_id: int, claim: str, at: datetime, until: datetime
) -> bool:
    """Take the delivery of an undelivered digest until ``until``, under the token ``claim``;
    False when it is delivered or another worker's claim has not run out.

    ``delivered_at`` is set only after the receiver's 2xx (``release_digest_delivery``), so a
    worker killed while delivering leaves a claim that runs out and the next worker sends the
    digest again: at least once, never lost. Call it in a ``write_lock`` session, whose row lock
    (PostgreSQL) or write lock (SQLite) makes this read-then-write a single step.
    """
    digest = session.exec(
        select(Digest)
        .where(col(Digest.id) == digest_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if digest is None or digest.delivered_at is not None:
        return False
    delivery = dict(digest.summary.get("delivery") or {})
    held_until = delivery.get("claimed_until")
    if isinstance(held_until, str) and as_utc(datetime.fromisoformat(held_until)) > as_utc(at):
        return False
    delivery.update(claim=claim, claimed_at=at.isoformat(), claimed_until=until.isoformat())
    digest.summary = {**digest.summary, "delivery": delivery}
    session.add(digest)
    return True


def release_digest_delivery(
    session: Session, *, digest_id: int, claim: str, at: datetime, error: str | None = None
) -> None:
    """End a claim. Without ``error`` the receiver took the digest: it is marked delivered at
    ``at``, whoever holds the claim now. With one, the failure is noted and the digest is free
    to claim again, unless the claim ran out and another worker took it meanwhile."""
    digest = session.exec(
        select(Digest)
        .where(col(Digest.id) == digest_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if digest is None:
        return
    summary = dict(digest.summary)
    if error is None:
        digest.delivered_at = at
        summary.pop("delivery", None)
    elif (summary.get("delivery") or {}).get("claim") == claim:
        summary["delivery"] = {"failed_at": at.isoformat(), "error": error}
    else:
        return
    digest.summary = summary
    session.add(digest)
