"""Issues: listing, what clustering reads and refreshes, and people's corrections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, text, update
from sqlmodel import Session, col, select

from triage.errors import InvalidInputError, NotFoundError
from triage.models import Feedback, Issue, IssueStatus, Membership, Unit, as_utc, utcnow
from triage.store._common import paginate
from triage.store.audit import record_audit

ISSUE_SORTS = {
    "priority": (col(Issue.priority).desc(), col(Issue.id)),
    "size": (col(Issue.size).desc(), col(Issue.id)),
    "updated": (col(Issue.updated_at).desc(), col(Issue.id)),
    "id": (col(Issue.id),),
}


def list_issues(
    session: Session,
    *,
    category: str | None = None,
    status: str | None = None,
    statuses: Sequence[str] | None = None,
    since: datetime | None = None,
    sort: str = "priority",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Issue], int]:
    if sort not in ISSUE_SORTS:
        raise InvalidInputError(
            f"Unknown sort {sort!r}; use one of {', '.join(ISSUE_SORTS)}.",
            details={"field": "sort"},
        )
    # Merged issues live on only as pointers to their survivor, listed when asked for by status.
    merged = IssueStatus.merged.value
    shows_merged = status == merged or (statuses is not None and merged in statuses)
    conditions = [] if shows_merged else [col(Issue.merged_into).is_(None), col(Issue.size) > 0]
    if category is not None:
        conditions.append(col(Issue.category) == category)
    if status is not None:
        conditions.append(col(Issue.status) == status)
    if statuses is not None:
        conditions.append(col(Issue.status).in_(list(statuses)))
    if since is not None:
        # In UTC: SQLite compares datetimes as text, without their offsets.
        conditions.append(col(Issue.updated_at) >= as_utc(since))
    return paginate(session, Issue, conditions, ISSUE_SORTS[sort], limit=limit, offset=offset)


def get_issue(session: Session, *, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFoundError(f"No issue with id {issue_id}.")
    return issue


def active_issues(session: Session) -> list[Issue]:
    """Issues that can still receive units: not merged away."""
    return list(
        session.exec(
            select(Issue).where(col(Issue.merged_into).is_(None)).order_by(col(Issue.id))
        ).all()
    )


def active_issues_by_id(session: Session) -> dict[int, Issue]:
    """``active_issues`` by id."""
    return {issue.id: issue for issue in active_issues(session) if issue.id is not None}


def issue_centroids(
    session: Session, *, statuses: Iterable[str]
) -> dict[int, tuple[bytes, str, float | None]]:
    """issue id -> (centroid, status, attach threshold) of every active issue in ``statuses``
    with a centroid: what placing a new unit needs, without loading whole issues each batch."""
    rows = session.exec(
        select(Issue.id, Issue.centroid, Issue.status, Issue.attach_threshold).where(
            col(Issue.merged_into).is_(None),
            col(Issue.status).in_([str(status) for status in statuses]),
            col(Issue.centroid).is_not(None),
        )
    )
    return {
        issue_id: (centroid, status, threshold)  # type: ignore[misc]
        for issue_id, centroid, status, threshold in rows
        if centroid
    }


def refresh_issue_sizes(session: Session) -> None:
    """Size and distinct customers are derived from memberships, never counted separately.

    One UPDATE with correlated counts, written only where a figure changed; issues loaded in
    the session see the new figures (``fetch`` expires them)."""
    size = select(func.count()).where(col(Membership.issue_id) == col(Issue.id)).scalar_subquery()
    customers = (
        select(func.count(func.distinct(col(Feedback.customer_id))))
        .select_from(Membership)
        .join(Unit, col(Unit.id) == col(Membership.unit_id))
        .join(Feedback, col(Feedback.id) == col(Unit.feedback_id))
        .where(col(Membership.issue_id) == col(Issue.id))
        .scalar_subquery()
    )
    session.execute(
        update(Issue)
        .where((col(Issue.size) != size) | (col(Issue.customers) != customers))
        .values(size=size, customers=customers)
        .execution_options(synchronize_session="fetch")
    )


def lock_issues(session: Session) -> None:
    """Serialise issue refreshes: one at a time, whichever worker runs them.

    SQLite already holds its write lock; PostgreSQL takes a transaction-level advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7273)"))


AUDITED_FIELDS = ("title", "category", "status", "assignee", "external_url", "merged_into")


def _snapshot(issue: Issue) -> dict[str, Any]:
    return {name: getattr(issue, name) for name in AUDITED_FIELDS}


def update_issue(
    session: Session, *, issue_id: int, changes: dict[str, Any], api_key_id: int | None, actor: str
) -> Issue:
    """Apply a person's edit, remember which fields a person owns now, and audit it."""
    issue = get_issue(session, issue_id=issue_id)
    if issue.merged_into is not None:
        raise InvalidInputError(
            f"Issue {issue_id} was merged into issue {issue.merged_into}; edit that one."
        )
    before = _snapshot(issue)
    for name, value in changes.items():
        setattr(issue, name, value.value if hasattr(value, "value") else value)
    if "status" in changes:
        issue.resolved_at = utcnow() if issue.status == "resolved" else None
    issue.human_fields = sorted(set(issue.human_fields) | set(changes))
    issue.updated_at = utcnow()
    session.add(issue)
    record_audit(
        session,
        action="issue.update",
        target_type="issue",
        target_id=issue_id,
        before=before,
        after=_snapshot(issue),
        api_key_id=api_key_id,
        actor=actor,
    )
    return issue


def move_units(
    session: Session, *, unit_ids: Sequence[int], issue_id: int, api_key_id: int | None, actor: str
) -> Issue:
    """Put units into an issue by hand; a manual membership survives every re-clustering."""
    issue = get_issue(session, issue_id=issue_id)
    if issue.merged_into is not None:
        raise InvalidInputError(f"Issue {issue_id} was merged into issue {issue.merged_into}.")
    found = set(session.exec(select(Unit.id).where(col(Unit.id).in_(list(unit_ids)))).all())
    missing = sorted(set(unit_ids) - found)
    if missing:
        raise NotFoundError(f"No units with ids {missing[:20]}.", details={"missing": missing})
    before = {
        m.unit_id: m.issue_id
        for m in session.exec(select(Membership).where(col(Membership.unit_id).in_(found))).all()
    }
    session.execute(delete(Membership).where(col(Membership.unit_id).in_(found)))
    session.add_all(
        Membership(unit_id=unit_id, issue_id=issue_id, method="manual")  # type: ignore[arg-type]
        for unit_id in sorted(found)  # type: ignore[type-var]
    )
    session.flush()
    record_audit(
        session,
        action="issue.move_units",
        target_type="issue",
        target_id=issue_id,
        before={"issues_of_units": {str(k): v for k, v in before.items()}},
        after={"unit_ids": sorted(found)},
        api_key_id=api_key_id,
        actor=actor,
    )
    refresh_issue_sizes(session)
    return issue


def merge_issues(
    session: Session, *, issue_id: int, into: int, api_key_id: int | None, actor: str
) -> Issue:
    if issue_id == into:
        raise InvalidInputError("An issue cannot be merged into itself.")
    source, target = get_issue(session, issue_id=issue_id), get_issue(session, issue_id=into)
    for issue in (source, target):
        if issue.merged_into is not None:
            raise InvalidInputError(
                f"Issue {issue.id} was already merged into issue {issue.merged_into}."
            )
    before = _snapshot(source)
    unit_ids = session.exec(
        select(Membership.unit_id).where(col(Membership.issue_id) == issue_id)
    ).all()
    session.execute(delete(Membership).where(col(Membership.issue_id) == issue_id))
    session.add_all(Membership(unit_id=u, issue_id=into, method="manual") for u in unit_ids)
    now = utcnow().isoformat()
    source.merged_into = into
    source.status = IssueStatus.merged.value
    source.updated_at = target.updated_at = utcnow()
    source.lineage = [
        *source.lineage,
        {"event": "merged_into", "other_issue_id": into, "at": now, "by": "person"},
    ]
    target.lineage = [
        *target.lineage,
        {"event": "merged_from", "other_issue_id": issue_id, "at": now, "by": "person"},
    ]
    session.add_all([source, target])
    session.flush()
    record_audit(
        session,
        action="issue.merge",
        target_type="issue",
        target_id=issue_id,
        before=before,
        after=_snapshot(source),
        api_key_id=api_key_id,
        actor=actor,
    )
    refresh_issue_sizes(session)
    return target


def split_issue(
    session: Session, *, issue_id: int, unit_ids: Sequence[int], api_key_id: int | None, actor: str
) -> Issue:
    """Move some of an issue's units into a new issue of their own."""
    issue = get_issue(session, issue_id=issue_id)
    members = set(
        session.exec(select(Membership.unit_id).where(col(Membership.issue_id) == issue_id)).all()
    )
    strangers = sorted(set(unit_ids) - members)
    if strangers:
        raise InvalidInputError(
            f"Units {strangers[:20]} are not in issue {issue_id}.", details={"units": strangers}
        )
    if issue.merged_into is not None:
        raise InvalidInputError(f"Issue {issue_id} was merged into issue {issue.merged_into}.")
    now = utcnow().isoformat()
    # No title or category of the parent's: a person's label of the parent says nothing about
    # these statements. ``triage.corrections.split`` gives the machine's at once.
    new = Issue(
        lineage=[{"event": "split_from", "other_issue_id": issue_id, "at": now, "by": "person"}],
    )
    session.add(new)
    session.flush()
    issue.lineage = [
        *issue.lineage,
        {"event": "split_into", "other_issue_id": new.id, "at": now, "by": "person"},
    ]
    session.add(issue)
    move_units(session, unit_ids=unit_ids, issue_id=new.id, api_key_id=api_key_id, actor=actor)  # type: ignore[arg-type]
    return new


def confirm_unit_categories(
    session: Session,
    *,
    issue_id: int,
    category: str,
    unit_ids: Sequence[int] | None,
    api_key_id: int | None,
    actor: str,
) -> list[int]:
    """A person confirms that statements of an issue are of ``category``: ``unit_ids`` (each a
    member of the issue), or every member when None. Only confirmed statements become training
    labels (``corrected_units``); returns their ids."""
    members = set(
        session.exec(select(Membership.unit_id).where(col(Membership.issue_id) == issue_id)).all()
    )
    chosen = members if unit_ids is None else set(unit_ids)
    strangers = sorted(chosen - members)
    if strangers:
        raise InvalidInputError(
            f"Units {strangers[:20]} are not in issue {issue_id}.", details={"units": strangers}
        )
    confirmed = sorted(chosen)
    for start in range(0, len(confirmed), 500):
        session.execute(
            update(Unit)
            .where(col(Unit.id).in_(confirmed[start : start + 500]))
            .values(confirmed_category=category)
            .execution_options(synchronize_session=False)
        )
    record_audit(
        session,
        action="issue.confirm_units",
        target_type="issue",
        target_id=issue_id,
        before=None,
        after={"category": category, "unit_ids": confirmed},
        api_key_id=api_key_id,
        actor=actor,
    )
    return confirmed
