"""Tickets, stored digests and (for admins) API keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RedactDep, SessionDep, WriteSessionDep
from api.routes.feedback import to_public
from api.ui.issues import PAGE_SIZE, Text
from api.ui.session import AdminViewer, Forbidden, ViewerDep
from api.ui.templating import page
from triage import store
from triage.models import MAX_ID, FeedbackStatus, Scope

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/feedback")
def feedback_page(
    session: SessionDep,
    viewer: ViewerDep,
    redact: RedactDep,
    q: Text = "",
    source: Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")] = "",
    status: Annotated[FeedbackStatus | Literal[""], Query()] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_ID // PAGE_SIZE)] = 1,
    done: Annotated[str, Query(max_length=300)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    rows, total = store.search_feedback(
        session,
        text=q.strip() or None,
        source=source.strip() or None,
        status=status or None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    issues = store.issue_ids_by_feedback(session, feedback_ids=[row.id for row in rows])  # type: ignore[misc]
    # The API's own shaping: redacted text, and source, ids and errors through the redactor.
    tickets = to_public(rows, issues, redact) if rows else []
    params = {"q": q, "source": source, "status": status}
    return page(
        "feedback.html",
        viewer=viewer,
        tickets=tickets,
        total=total,
        params=params,
        page_number=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        statuses=[s.value for s in FeedbackStatus],
        done=done,
        error=error,
    )


@router.get("/digests")
def digests_page(session: SessionDep, viewer: ViewerDep) -> Response:
    return page("digests.html", viewer=viewer, digests=store.list_digests(session))


@router.get("/digests/{week}")
def digest_page(
    week: Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$")], session: SessionDep, _viewer: ViewerDep
) -> Response:
    """The stored page exactly as it was rendered and delivered; it is self-contained."""
    stored = store.get_digest(session, week=week, fmt="html")
    if stored is None:
        return page("error.html", 404, viewer=_viewer, title="Not found",
                    message=f"No digest is stored for {week}.")  # fmt: skip
    return HTMLResponse(stored.content, headers={"Cache-Control": "no-store"})


@router.get("/keys")
def keys_page(session: SessionDep, viewer: ViewerDep) -> Response:
    if not viewer.is_admin:
        raise Forbidden("Managing keys needs an admin key.")
    return page("keys.html", viewer=viewer, keys=store.list_api_keys(session), secret=None,
                scopes=[s.value for s in Scope])  # fmt: skip


@router.post("/keys")
def create_key(
    session: WriteSessionDep,
    viewer: AdminViewer,
    scope: Annotated[Scope, Form()],
    name: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """Answers with the page itself, not a redirect: the new secret is shown this once."""
    key, secret = store.create_api_key(session, scope=scope, name=name.strip())
    session.commit()
    return page("keys.html", viewer=viewer, keys=store.list_api_keys(session), secret=secret,
                created=key, scopes=[s.value for s in Scope])  # fmt: skip


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: WriteSessionDep, _viewer: AdminViewer
) -> RedirectResponse:
    store.revoke_api_key(session, key_id=key_id)
    session.commit()
    return RedirectResponse("/ui/keys", status_code=303)
