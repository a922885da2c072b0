"""Corrections from the issue page: one form each, answered with a redirect back to the page.

Each calls the same ``triage.store`` function as the API route (``api/routes/issues.py``), with
the same actor, so the audit log and the training labels cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path
from fastapi.responses import RedirectResponse

from api.deps import WriteSessionDep
from api.routes.issues import _actor
from api.ui.session import AdminViewer
from triage import store
from triage.errors import TriageError
from triage.models import MAX_ID, Category, Issue, IssueStatus

router = APIRouter(prefix="/ui/issues", include_in_schema=False)

IssueId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Checkboxes: none ticked sends nothing, which the page explains rather than a 422 body.
UnitIds = Annotated[list[int] | None, Form(alias="unit_id", max_length=10_000)]


def _back(issue_id: int, **query: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/issues/{issue_id}?{urlencode(query)}", status_code=303)


def _apply(
    session: WriteSessionDep, issue_id: int, change: Callable[[], Issue], done: str
) -> RedirectResponse:
    """Run one store call and commit; a refusal (merged issue, unknown unit) is shown on the
    page instead of an error body the browser would display raw."""
    try:
        result = change()
        session.commit()
    except TriageError as e:
        session.rollback()
        return _back(issue_id, error=e.message)
    return _back(issue_id, done=done.format(id=result.id))


def _update(
    session: WriteSessionDep, viewer: AdminViewer, issue_id: int, field: str, value: object
) -> RedirectResponse:
    def change() -> Issue:
        return store.update_issue(
            session,
            issue_id=issue_id,
            changes={field: value},
            api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )

    return _apply(session, issue_id, change, f"Saved the {field}.")


@router.post("/{issue_id}/title")
def set_title(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    title: Annotated[str, Form(min_length=1, max_length=300)],
) -> RedirectResponse:
    return _update(session, viewer, issue_id, "title", title.strip())


@router.post("/{issue_id}/category")
def set_category(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    category: Annotated[Category, Form()],
) -> RedirectResponse:
    return _update(session, viewer, issue_id, "category", category)


@router.post("/{issue_id}/status")
def set_status(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    status: Annotated[IssueStatus, Form()],
) -> RedirectResponse:
    return _update(session, viewer, issue_id, "status", status)


@router.post("/{issue_id}/assignee")
def set_assignee(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    assignee: Annotated[str, Form(max_length=255)] = "",
) -> RedirectResponse:
    # An empty field unassigns.
    return _update(session, viewer, issue_id, "assignee", assignee.strip() or None)


@router.post("/{issue_id}/merge")
def merge(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    into: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> RedirectResponse:
    def change() -> Issue:
        return store.merge_issues(
            session, issue_id=issue_id, into=into, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Merged into issue {id}.")


@router.post("/{issue_id}/split")
def split(
    issue_id: IssueId, session: WriteSessionDep, viewer: AdminViewer, unit_ids: UnitIds = None
) -> RedirectResponse:
    if not unit_ids:
        return _back(issue_id, error="Select at least one statement to split off.")

    def change() -> Issue:
        return store.split_issue(
            session, issue_id=issue_id, unit_ids=unit_ids, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Split the selected statements into issue {id}.")


@router.post("/{issue_id}/move")
def move(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    unit_ids: UnitIds = None,
    to: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> RedirectResponse:
    """Move the selected statements of this issue into issue ``to``."""
    if not unit_ids or to is None:
        return _back(issue_id, error="Select statements and give the issue number to move to.")

    def change() -> Issue:
        return store.move_units(
            session, unit_ids=unit_ids, issue_id=to, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Moved the selected statements into issue {id}.")
