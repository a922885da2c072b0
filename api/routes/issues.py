"""The ranked issue list (read scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReadKey, SessionDep
from triage import store
from triage.models import Category, IssuePublic, IssuesPublic, IssueStatus

router = APIRouter(prefix="/v1/issues", tags=["issues"])


@router.get("", response_model=IssuesPublic, summary="Issues, highest priority first")
def list_issues(
    session: SessionDep,
    _key: ReadKey,
    category: Category | None = None,
    status: IssueStatus | None = None,
    since: Annotated[datetime | None, Query(description="Updated at or after.")] = None,
    sort: Annotated[str, Query(pattern="^(priority|size|updated|id)$")] = "priority",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> IssuesPublic:
    rows, total = store.list_issues(
        session,
        category=category.value if category else None,
        status=status.value if status else None,
        since=since,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return IssuesPublic(items=[IssuePublic.model_validate(row) for row in rows], total=total)


@router.get("/{issue_id}", response_model=IssuePublic, summary="One issue")
def get_issue(issue_id: int, session: SessionDep, _key: ReadKey) -> IssuePublic:
    return IssuePublic.model_validate(store.get_issue(session, issue_id=issue_id))
