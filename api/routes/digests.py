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
    week: Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$", examples=["2026-W47"])],
    format: Annotated[Literal["html", "md"], Query()] = "html",
) -> Response:
    """Made and stored the first time a complete ISO week (UTC) is asked for; the same stored
    digest is answered ever after."""
    stored = digest.generate(request.app.state.engine, week=week, fmt=format, settings=settings)
    return Response(stored.content, media_type=MEDIA_TYPES[format])
