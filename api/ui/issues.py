"""The ranked issue list and one issue's page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep
from api.ui.corrections import configured_trackers
from api.ui.session import ViewerDep
from api.ui.templating import page
from triage import store
from triage.errors import NotFoundError
from triage.models import MAX_ID, Category, IssueStatus, utcnow

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 25
MEMBERS_PAGE_SIZE = 20
SPARKLINE_WEEKS = 8
TREND_WEEKS = 12
# Resolved and ignored issues are what nobody needs to look at again unless they ask.
DEFAULT_STATUSES = [IssueStatus.open.value, IssueStatus.acknowledged.value,
                    IssueStatus.regressed.value]  # fmt: skip

# Any issue a merge can go into: every status but merged.
MERGEABLE = [s.value for s in IssueStatus if s != IssueStatus.merged]
MERGE_CANDIDATES = 10

Text = Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")]


@router.get("/issues")
def issues_page(
    session: SessionDep,
    viewer: ViewerDep,
    # A select's "any" option sends an empty value.
    category: Annotated[Category | Literal[""], Query()] = "",
    status: Annotated[list[IssueStatus] | None, Query()] = None,
    model: Text = "",
    assignee: Text = "",
    q: Text = "",
    sort: Annotated[str, Query(pattern="^(priority|size|trend|newest)$")] = "priority",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_ID // PAGE_SIZE)] = 1,
) -> Response:
    statuses = [s.value for s in status] if status else DEFAULT_STATUSES
    issues, total = store.search_issues(
        session,
        statuses=statuses,
        category=category or None,
        model=model.strip() or None,
        assignee=assignee.strip() or None,
        text=q.strip() or None,
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    ids: list[int] = [issue.id for issue in issues]  # type: ignore[misc]
    weekly = store.issue_weekly_counts(session, issue_ids=ids, end=utcnow(), weeks=SPARKLINE_WEEKS)
    params = {"category": category, "status": statuses,
              "model": model, "assignee": assignee, "q": q, "sort": sort}  # fmt: skip
    return page(
        "issues.html",
        viewer=viewer,
        issues=issues,
        weekly=weekly,
        total=total,
        params=params,
        page_number=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


def _signals(evidence: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence grouped by signal: what each added and the sentences that say why."""
    grouped: dict[str, dict[str, Any]] = {}
    for item in evidence:
        signal = grouped.setdefault(
            str(item.get("signal", "")), {"contribution": 0.0, "reasons": []}
        )
        signal["contribution"] += float(item.get("contribution") or 0.0)
        signal["reasons"].append(item)
    return [{"signal": name, **value} for name, value in grouped.items()]


@router.get("/issues/{issue_id}")
def issue_page(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    viewer: ViewerDep,
    settings: SettingsDep,
    q: Text = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_ID // MEMBERS_PAGE_SIZE)] = 1,
    merge_q: Text = "",
    done: Annotated[str, Query(max_length=300)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    try:
        issue = store.get_issue(session, issue_id=issue_id)
    except NotFoundError as e:
        return page("error.html", 404, viewer=viewer, title="Not found", message=e.message)
    now = utcnow()
    members, member_total = store.issue_members(
        session,
        issue_id=issue_id,
        text=q.strip() or None,
        limit=MEMBERS_PAGE_SIZE,
        offset=(page_number - 1) * MEMBERS_PAGE_SIZE,
    )
    counts = store.issue_weekly_counts(session, issue_ids=[issue_id], end=now, weeks=TREND_WEEKS)
    weekly = counts[issue_id]
    outputs = store.digest_linked_examples(
        session, issue_id=issue_id, end=now + timedelta(days=1), limit=10
    )
    audit = store.audit_entries(session, target_type="issue", target_id=str(issue_id))
    # The merge form's search: issues whose title (or a statement) has the words, not this one.
    candidates = []
    if viewer.is_admin and merge_q.strip():
        found, _ = store.search_issues(
            session, statuses=MERGEABLE, text=merge_q.strip(), limit=MERGE_CANDIDATES + 1
        )
        candidates = [c for c in found if c.id != issue_id][:MERGE_CANDIDATES]
    return page(
        "issue.html",
        viewer=viewer,
        issue=issue,
        signals=_signals(issue.evidence),
        members=members,
        member_total=member_total,
        member_pages=max(1, -(-member_total // MEMBERS_PAGE_SIZE)),
        page_number=page_number,
        q=q,
        weekly=weekly,
        trend_weeks=TREND_WEEKS,
        outputs=outputs,
        audit=audit,
        merge_q=merge_q,
        candidates=candidates,
        trackers=configured_trackers(settings) if viewer.is_admin else [],
        done=done,
        error=error,
    )
