"""Signing in with an API key, and out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    Forbidden,
    FormViewer,
    set_cookie,
    start_session,
)
from api.ui.templating import page
from triage import store
from triage.models import Scope

router = APIRouter(prefix="/ui", include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only our own pages: "//evil.example" or "https://..." would make sign-in an open redirect.
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/issues"


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/issues", status_code=303)


@router.get("/login")
def login_form(next: str = "/ui/issues") -> Response:
    return _login_page(next)


def _login_page(next: str, error: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        "login.html", status_code, viewer=None, next=_safe_next(next), csrf=token, error=error
    )
    set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
def login(
    request: Request,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/issues",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token, expected):
        raise Forbidden("The sign-in form expired or was not sent from this site; reload it.")
    # The same per-address throttle as the API's bearer keys: the form is another way to guess.
    address = request.client.host if request.client else ""
    failures = request.app.state.auth_failures
    if failures.peek(address) > 0:
        return _login_page(next, "Too many failed sign-ins from here; wait a minute.", 429)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        found = store.find_api_key(session, secret=key.strip()) if key.strip() else None
    if found is None:
        failures.acquire(address)
    if found is None or found.scope == Scope.ingest:
        message = (
            "That key is unknown or revoked."
            if found is None
            else "Ingest keys can only send feedback; sign in with a read or admin key."
        )
        return _login_page(next, message, 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, response, found)
    return response


@router.post("/logout")
def logout(_viewer: FormViewer) -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
