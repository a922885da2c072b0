"""What people browse: issues and tickets filtered the way the web app asks, an issue's member
tickets with their statements, its weekly volumes, and the stored digests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from triage.errors import InvalidInputError
from triage.models import Digest, Feedback, Issue, Link, Membership, ModelOutput, Unit
from triage.store._common import paginate
from triage.store.digests import feedback_time

# The web app's sorts; "trend" reads the stored trend's relative change, on both databases.
BROWSE_SORTS = {
    "priority": (col(Issue.priority).desc(), col(Issue.id)),
    "size": (col(Issue.size).desc(), col(Issue.id)),
    "trend": (Issue.trend["change"].as_float().desc(), col(Issue.priority).desc(), col(Issue.id)),
    "newest": (col(Issue.created_at).desc(), col(Issue.id).desc()),
}


def _contains(column: Any, text: str) -> Any:
    # The user's text is matched literally: % and _ are escaped, not wildcards.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def _member_tickets(issue_column: Any) -> Any:
    """Tickets with at least one statement in the issue named by ``issue_column``."""
    return (
        select(Unit.feedback_id)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(col(Membership.issue_id) == issue_column)
    )


def search_issues(
    session: Session,
    *,
    statuses: Sequence[str],
    category: str | None = None,
    model: str | None = None,
    assignee: str | None = None,
    text: str | None = None,
    sort: str = "priority",
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Issue], int]:
    """Active issues in ``statuses``; ``model`` matches the model or feature of an output linked
    to a member ticket, ``text`` the title or any member statement."""
    if sort not in BROWSE_SORTS:
        raise InvalidInputError(f"Unknown sort {sort!r}; use one of {', '.join(BROWSE_SORTS)}.")
    conditions = [
        col(Issue.merged_into).is_(None),
        col(Issue.size) > 0,
        col(Issue.status).in_(list(statuses)),
    ]
    if category:
        conditions.append(col(Issue.category) == category)
    if assignee:
        conditions.append(_contains(col(Issue.assignee), assignee))
    if model:
        linked = (
            select(Link.feedback_id)
            .join(ModelOutput, col(ModelOutput.id) == col(Link.model_output_id))
            .where(or_(col(ModelOutput.model) == model, col(ModelOutput.feature) == model))
        )
        conditions.append(
            select(Membership.issue_id)
            .join(Unit, col(Unit.id) == col(Membership.unit_id))
            .where(col(Membership.issue_id) == col(Issue.id), col(Unit.feedback_id).in_(linked))
            .exists()
        )
    if text:
        statement_matches = (
            select(Membership.unit_id)
            .join(Unit, col(Unit.id) == col(Membership.unit_id))
            .where(col(Membership.issue_id) == col(Issue.id), _contains(col(Unit.text), text))
            .exists()
        )
        conditions.append(or_(_contains(col(Issue.title), text), statement_matches))
    return paginate(session, Issue, conditions, BROWSE_SORTS[sort], limit=limit, offset=offset)


def issue_weekly_counts(
    session: Session, *, issue_ids: Sequence[int], end: datetime, weeks: int
) -> dict[int, list[int]]:
    """Distinct tickets per issue in each of the ``weeks`` weeks before ``end``, oldest first:
    the sparkline of each issue on a page, in one query."""
    start = end - timedelta(weeks=weeks)
    when = feedback_time()
    rows = session.exec(
        select(Membership.issue_id, Unit.feedback_id, when)
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(col(Membership.issue_id).in_(list(issue_ids)), when >= start, when < end)
        .distinct()
    ).all()
    counts = {issue_id: [0] * weeks for issue_id in issue_ids}
    start_naive = start.replace(tzinfo=None)
    for issue_id, _, written in rows:
        # SQLite hands back naive UTC datetimes, PostgreSQL aware ones.
        age = written.replace(tzinfo=None) - start_naive
        counts[issue_id][min(int(age / timedelta(weeks=1)), weeks - 1)] += 1
    return counts


def issue_members(
    session: Session, *, issue_id: int, text: str | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The issue's member tickets, newest first, each with its statements in this issue (unit
    id, position, redacted text): what a person picks statements from to split or move."""
    tickets = _member_tickets(issue_id)
    if text:
        tickets = tickets.where(_contains(col(Unit.text), text))
    ids = tickets.distinct().subquery()
    total = session.exec(select(func.count()).select_from(ids)).one()
    when = feedback_time()
    page = session.exec(
        select(Feedback.id, when, Feedback.status)
        .where(col(Feedback.id).in_(select(ids.c.feedback_id)))
        .order_by(when.desc(), col(Feedback.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    units = session.exec(
        select(Unit.feedback_id, Unit.id, Unit.position, Unit.text)
        .join(Membership, col(Membership.unit_id) == col(Unit.id))
        .where(
            col(Membership.issue_id) == issue_id,
            col(Unit.feedback_id).in_([row[0] for row in page]),
        )
        .order_by(col(Unit.feedback_id), col(Unit.position))
    ).all()
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for feedback_id, unit_id, position, unit_text in units:
        by_ticket.setdefault(feedback_id, []).append(
            {"unit_id": unit_id, "position": position, "text": unit_text}
        )
    items = [
        {"feedback_id": fid, "written_at": written, "status": status, "units": by_ticket[fid]}
        for fid, written, status in page
        if fid is not None
    ]
    return items, int(total)


def search_feedback(
    session: Session,
    *,
    text: str | None = None,
    source: str | None = None,
    status: str | None = None,
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Feedback], int]:
    """Tickets, newest first; ``text`` matches the redacted text only."""
    conditions = []
    if text:
        conditions.append(_contains(col(Feedback.redacted_text), text))
    if source:
        conditions.append(col(Feedback.source) == source)
    if status:
        conditions.append(col(Feedback.status) == status)
    order = (col(Feedback.id).desc(),)
    return paginate(session, Feedback, conditions, order, limit=limit, offset=offset)


def list_digests(session: Session, *, fmt: str = "html") -> list[Digest]:
    """Stored digests of one format, the newest week first."""
    return list(
        session.exec(
            select(Digest).where(col(Digest.format) == fmt).order_by(col(Digest.week).desc())
        ).all()
    )
