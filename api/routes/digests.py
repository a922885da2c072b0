"""The weekly digest (read scope): HTML to open in a browser, Markdown to paste."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import ReadKey, SettingsDep
from api.errors import API_ERRORS
from triage import digest

router = APIRouter(prefix="/v1/digests", tags=["digests"], responses=API_ERRORS)

# The content security policy and nosniff come from api.security.SecurityHeaders, for every
# HTML response alike.
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8"}


@router.get(
    "/{week}",
    summary="One week's digest",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "text/markdown": {}}}},
)
def get_digest(
    request: Request,
    settings: SettingsDep,
    _key: ReadKey,
    # ASCII digits only ([0-9], not \d, which also takes "٢٠٢٦" and "４７").
    week: Annotated[str, Path(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2026-W47"])],
    format: Annotated[Literal["html", "md"], Query()] = "html",
) -> Response:
    """An ISO week's (UTC) digest. Stored once the week is closed (the schedule's moment after
    it, Monday 08:00 UTC by default) and answered the same ever after; before that it is made
    from the data as it is, not stored, and sent with `Cache-Control: no-store`. A week not over
    yet, or outside 1970-W01..9998-W52, is a 422."""
    made = digest.generate(request.app.state.engine, week=week, fmt=format, settings=settings)
    response = Response(made.content, media_type=MEDIA_TYPES[format])
    if made.id is None:  # the week is not closed: late tickets may still change it
        response.headers["Cache-Control"] = "no-store"
    return response
