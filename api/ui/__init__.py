"""The web app under ``/ui/``: server-rendered pages over the same store functions as the API.

No build step and no script: every page is HTML and a form, so it works without JavaScript.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.ui import auth, corrections, issues, records
from api.ui.session import Forbidden, Redirect
from api.ui.templating import page


async def _on_redirect(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return RedirectResponse(exc.location, status_code=303)


async def _on_forbidden(_request: Request, exc: Exception) -> Response:
    return page("error.html", 403, viewer=None, title="Not allowed", message=str(exc))


def install_ui(app: FastAPI) -> None:
    app.add_exception_handler(Redirect, _on_redirect)
    app.add_exception_handler(Forbidden, _on_forbidden)
    for module in (auth, issues, corrections, records):
        app.include_router(module.router)
