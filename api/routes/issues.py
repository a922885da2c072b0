"""The ranked issue list (read scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import (
    AdminKey,
    EngineDep,
    ReadKey,
    RedactDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from api.errors import API_ERRORS, ErrorResponse
from triage import corrections, store
from triage.integrations.trackers import tracker_from_settings
from triage.integrations.trackers.export import export_issue
from triage.models import (
    MAX_ID,
    ApiKey,
    Category,
    IssueExport,
    IssueExportPublic,
    IssueMembersPublic,
    IssueMerge,
    IssuePublic,
    IssuesPublic,
    IssueStatus,
    IssueUpdate,
    UnitMove,
    UtcDateTime,
)

# A page a person or a dashboard reads at once; a sync job asks for up to the maximum.
ISSUES_PAGE = 50
MAX_ISSUES_PAGE = 1000

router = APIRouter(prefix="/v1/issues", tags=["issues"], responses=API_ERRORS)


@router.get("", response_model=IssuesPublic, summary="Issues, highest priority first")
def list_issues(
    session: SessionDep,
    _key: ReadKey,
    category: Category | None = None,
    status: IssueStatus | None = None,
    since: Annotated[
        UtcDateTime | None,
        Query(description="Updated at or after (ISO 8601; without an offset, UTC)."),
    ] = None,
    sort: Annotated[str, Query(pattern="^(priority|size|updated|id)$")] = "priority",
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_ISSUES_PAGE,
            description=f"Page size: {ISSUES_PAGE} unless set, at most {MAX_ISSUES_PAGE}; "
            "`total` and `offset` page through the rest.",
        ),
    ] = ISSUES_PAGE,
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


@router.get(
    "/{issue_id}/feedback",
    response_model=IssueMembersPublic,
    summary="The issue's tickets, newest first, with their statements' unit ids",
)
def list_issue_feedback(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> IssueMembersPublic:
    """Only the statements in this issue are listed; their ``unit_id`` is what `split` and
    `units` (move) take."""
    store.get_issue(session, issue_id=issue_id)
    items, total = store.issue_members(session, issue_id=issue_id, limit=limit, offset=offset)
    return IssueMembersPublic.model_validate({"items": items, "total": total})


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
    """Only the fields sent change. A field a person set is never overwritten by the machine.
    A category trains `triage train` only on the statements confirmed with it in
    `confirm_units` (unit ids of this issue, or `"all"`), never on every member of a mixed
    issue."""
    sent = changes.model_dump(exclude_unset=True)
    confirm = sent.pop("confirm_units", None)
    issue = corrections.update(
        session, issue_id=issue_id, changes=sent, confirm_units=confirm, api_key_id=key.id,
        actor=_actor(key),
    )  # fmt: skip
    session.commit()
    return IssuePublic.model_validate(issue)


@router.post("/{issue_id}/merge", response_model=IssuePublic, summary="Merge into another issue")
def merge_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: IssueMerge,
    session: WriteSessionDep,
    settings: SettingsDep,
    key: AdminKey,
) -> IssuePublic:
    """This issue's statements join `into`, which is relabelled and ranked at once; this
    issue becomes `merged`, with `merged_into` naming `into`."""
    target = corrections.merge(
        session, settings, issue_id=issue_id, into=body.into, api_key_id=key.id,
        actor=_actor(key),
    )  # fmt: skip
    session.commit()
    return IssuePublic.model_validate(target)


@router.post("/{issue_id}/split", response_model=IssuePublic, summary="Split units off")
def split_issue(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: UnitMove,
    session: WriteSessionDep,
    settings: SettingsDep,
    key: AdminKey,
) -> IssuePublic:
    """A new issue of these statements, with its own title, keywords, category and priority
    computed from them at once (the machine's, never the parent's person-set ones)."""
    new = corrections.split(
        session, settings, issue_id=issue_id, unit_ids=body.unit_ids, api_key_id=key.id,
        actor=_actor(key),
    )  # fmt: skip
    session.commit()
    return IssuePublic.model_validate(new)


@router.post("/{issue_id}/units", response_model=IssuePublic, summary="Move units into this issue")
def move_units(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: UnitMove,
    session: WriteSessionDep,
    settings: SettingsDep,
    key: AdminKey,
) -> IssuePublic:
    issue = corrections.move(
        session, settings, unit_ids=body.unit_ids, issue_id=issue_id, api_key_id=key.id,
        actor=_actor(key),
    )  # fmt: skip
    session.commit()
    return IssuePublic.model_validate(issue)


@router.post(
    "/{issue_id}/export",
    response_model=IssueExportPublic,
    status_code=201,
    summary="Create the issue's ticket in GitHub, Jira or Linear",
    responses={
        200: {"model": IssueExportPublic, "description": "Exported before: the existing ticket"},
        502: {"model": ErrorResponse, "description": "The tracker refused or was unreachable"},
    },
)
def export_to_tracker(
    issue_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: IssueExport,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
    redact: RedactDep,
    key: AdminKey,
) -> IssueExportPublic:
    """Idempotent: a second export to the same tracker answers 200 with the ticket made the
    first time. The first ticket also becomes the issue's `external_url`, unless a person set
    that field."""
    result = export_issue(
        engine,
        issue_id=issue_id,
        tracker=tracker_from_settings(body.tracker, settings),
        redact=redact,
        base_url=settings.digest_base_url,
        timeout=settings.tracker_timeout_seconds,
        actor=_actor(key),
        api_key_id=key.id,
    )
    if not result.created:
        response.status_code = 200
    return IssueExportPublic.model_validate(result, from_attributes=True)
