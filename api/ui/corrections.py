"""Corrections from the issue page: one form each, answered with a redirect back to the page.

Each calls the same ``triage.corrections`` function as the API route (``api/routes/issues.py``),
with the same actor, so the audit log and the training labels cannot tell the two apart; sending
to a tracker calls the API's export. A failed ticket's retry button lives here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path
from fastapi.responses import RedirectResponse

from api.deps import EngineDep, RedactDep, SettingsDep, WriteSessionDep
from api.routes.issues import _actor
from api.ui.session import AdminViewer
from triage import corrections, store
from triage.errors import TriageError
from triage.integrations.trackers import tracker_from_settings
from triage.integrations.trackers.export import export_issue
from triage.models import MAX_ID, Category, Issue, IssueStatus, Tracker

router = APIRouter(prefix="/ui", include_in_schema=False)

IssueId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Checkboxes: none ticked sends nothing, which the page explains rather than a 422 body.
UnitIds = Annotated[list[int] | None, Form(alias="unit_id", max_length=10_000)]


def _back(issue_id: int, **query: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/issues/{issue_id}?{urlencode(query)}", status_code=303)


def configured_trackers(settings: SettingsDep) -> list[Tracker]:
    """The trackers whose settings are all there: the issue page offers only these."""
    found = []
    for tracker in Tracker:
        try:
            tracker_from_settings(tracker, settings)
        except TriageError:
            continue
        found.append(tracker)
    return found


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
    session: WriteSessionDep,
    viewer: AdminViewer,
    issue_id: int,
    field: str,
    value: object,
    confirm_units: list[int] | Literal["all"] | None = None,
) -> RedirectResponse:
    def change() -> Issue:
        return corrections.update(
            session, issue_id=issue_id, changes={field: value}, confirm_units=confirm_units,
            api_key_id=viewer.key.id, actor=_actor(viewer.key),
        )  # fmt: skip

    done = f"Saved the {field}."
    if confirm_units == "all":
        done += " Its statements are training examples of it now."
    elif confirm_units:
        n = len(confirm_units)
        done += (
            f" The {n} selected statement{'s are' if n != 1 else ' is'} training examples of it."
        )
    return _apply(session, issue_id, change, done)


@router.post("/issues/{issue_id}/title")
def set_title(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    title: Annotated[str, Form(min_length=1, max_length=300)],
) -> RedirectResponse:
    return _update(session, viewer, issue_id, "title", title.strip())


@router.post("/issues/{issue_id}/category")
def set_category(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    category: Annotated[Category, Form()],
    confirm: Annotated[Literal["", "all", "selected"], Form()] = "",
    unit_ids: UnitIds = None,
) -> RedirectResponse:
    """``confirm``: nothing (no training label), ``all`` of the issue's statements, or the
    ``selected`` ones (the ticked checkboxes of the member list); only those are labels."""
    if confirm == "selected" and not unit_ids:
        return _back(issue_id, error="Tick the statements that are of this category first.")
    confirmed = {"all": "all", "selected": unit_ids}.get(confirm)
    return _update(session, viewer, issue_id, "category", category, confirmed)  # type: ignore[arg-type]


@router.post("/issues/{issue_id}/status")
def set_status(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    status: Annotated[IssueStatus, Form()],
) -> RedirectResponse:
    if status == IssueStatus.merged:
        return _back(issue_id, error="Merge it into another issue instead: use Merge.")
    return _update(session, viewer, issue_id, "status", status)


@router.post("/issues/{issue_id}/assignee")
def set_assignee(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    assignee: Annotated[str, Form(max_length=255)] = "",
) -> RedirectResponse:
    # An empty field unassigns.
    return _update(session, viewer, issue_id, "assignee", assignee.strip() or None)


@router.post("/issues/{issue_id}/merge")
def merge(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    settings: SettingsDep,
    into: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> RedirectResponse:
    def change() -> Issue:
        return corrections.merge(
            session, settings, issue_id=issue_id, into=into, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Merged into issue {id}.")


@router.post("/issues/{issue_id}/split")
def split(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    settings: SettingsDep,
    unit_ids: UnitIds = None,
) -> RedirectResponse:
    if not unit_ids:
        return _back(issue_id, error="Select at least one statement to split off.")

    def change() -> Issue:
        return corrections.split(
            session, settings, issue_id=issue_id, unit_ids=unit_ids, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Split the selected statements into issue {id}.")


@router.post("/issues/{issue_id}/move")
def move(
    issue_id: IssueId,
    session: WriteSessionDep,
    viewer: AdminViewer,
    settings: SettingsDep,
    unit_ids: UnitIds = None,
    to: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> RedirectResponse:
    """Move the selected statements of this issue into issue ``to``."""
    if not unit_ids or to is None:
        return _back(issue_id, error="Select statements and give the issue number to move to.")

    def change() -> Issue:
        return corrections.move(
            session, settings, unit_ids=unit_ids, issue_id=to, api_key_id=viewer.key.id,
            actor=_actor(viewer.key),
        )  # fmt: skip

    return _apply(session, issue_id, change, "Moved the selected statements into issue {id}.")


@router.post("/issues/{issue_id}/export")
def send_to_tracker(
    issue_id: IssueId,
    viewer: AdminViewer,
    engine: EngineDep,
    settings: SettingsDep,
    redact: RedactDep,
    tracker: Annotated[Tracker, Form()],
) -> RedirectResponse:
    """The API's export (``POST /v1/issues/{id}/export``): once per tracker, idempotent."""
    try:
        result = export_issue(
            engine,
            issue_id=issue_id,
            tracker=tracker_from_settings(tracker, settings),
            redact=redact,
            base_url=settings.digest_base_url,
            timeout=settings.tracker_timeout_seconds,
            actor=_actor(viewer.key),
            api_key_id=viewer.key.id,
        )
    except TriageError as e:
        return _back(issue_id, error=f"Not sent to {tracker.value}: {e.message}")
    verb = "Sent to" if result.created else "Already in"
    return _back(issue_id, done=f"{verb} {tracker.value} as {result.key}: {result.url}")


@router.post("/feedback/{feedback_id}/retry")
def retry_ticket(
    feedback_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: WriteSessionDep,
    viewer: AdminViewer,
) -> RedirectResponse:
    """Put one failed ticket back in the queue; the worker (or the next ``triage run``)
    processes it again."""
    requeued = store.requeue_feedback(
        session, feedback_id=feedback_id, api_key_id=viewer.key.id, actor=_actor(viewer.key)
    )
    session.commit()
    query = (
        {"done": f"Ticket {feedback_id} is queued again; the worker retries it."}
        if requeued
        else {"error": f"Ticket {feedback_id} is not failed; nothing to retry."}
    )
    return RedirectResponse(f"/ui/feedback?{urlencode(query)}", status_code=303)
