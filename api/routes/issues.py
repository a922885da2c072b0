"""The ranked issue list (read scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import AdminKey, ReadKey, SessionDep, WriteSessionDep
from api.errors import API_ERRORS
from triage import store
from triage.models import (
    MAX_ID,
    ApiKey,
    Category,
    IssueMerge,
    IssuePublic,
    IssuesPublic,
    IssueStatus,
    IssueUpdate,
    UnitMove,
)

router = APIRouter(prefix="/v1/issues", tags=["issues"], responses=API_ERRORS)


@router.get("", response_model=IssuesPublic, summary="Issues, highest priority first")
def list_issues(
    session: SessionDep,
    _key: ReadKey,
    category: Category | None = None,
    status: IssueStatus | None = None,
    since: Annotated[datetime | None, Query(description="Updated at or after.")] = None,
    sort: Annotated[str, Query(pattern="^(priority|size|updated|id)$")] = "priority",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
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
def get_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, _key: ReadKey
) -> IssuePublic:
    return IssuePublic.model_validate(store.get_issue(session, issue_id=issue_id))


# --- corrections (admin scope, audit-logged) ---------------------------------------------------


def _actor(key: ApiKey) -> str:
    return f"key:{key.id}" + (f" ({key.name})" if key.name else "")


@router.patch("/{issue_id}", response_model=IssuePublic, summary="Rename, recategorise, resolve")
def update_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    changes: IssueUpdate,
    session: WriteSessionDep,
    key: AdminKey,
) -> IssuePublic:
    """Only the fields sent change. A field a person set is never overwritten by the machine;
    a category set here becomes a training label for `triage train`."""
    sent = changes.model_dump(exclude_unset=True)
    issue = store.update_issue(
        session, issue_id=issue_id, changes=sent, api_key_id=key.id, actor=_actor(key)
    )
    session.commit()
    return IssuePublic.model_validate(issue)


@router.post("/{issue_id}/merge", response_model=IssuePublic, summary="Merge into another issue")
def merge_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: IssueMerge,
    session: WriteSessionDep,
    key: AdminKey,
) -> IssuePublic:
    target = store.merge_issues(
        session, issue_id=issue_id, into=body.into, api_key_id=key.id, actor=_actor(key)
    )
    session.commit()
    return IssuePublic.model_validate(target)


@router.post("/{issue_id}/split", response_model=IssuePublic, summary="Split units off")
def split_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: UnitMove,
    session: WriteSessionDep,
    key: AdminKey,
) -> IssuePublic:
    new = store.split_issue(
        session, issue_id=issue_id, unit_ids=body.unit_ids, api_key_id=key.id, actor=_actor(key)
    )
    session.commit()
    return IssuePublic.model_validate(new)


@router.post("/{issue_id}/units", response_model=IssuePublic, summary="Move units into this issue")
def move_units(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: UnitMove,
    session: WriteSessionDep,
    key: AdminKey,
) -> IssuePublic:
    issue = store.move_units(
        session, unit_ids=body.unit_ids, issue_id=issue_id, api_key_id=key.id, actor=_actor(key)
    )
    session.commit()
    return IssuePublic.model_validate(issue)
