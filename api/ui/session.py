"""The web app's sign-in: a signed session cookie naming an API key, and CSRF tokens.

The cookie holds the key's id (never its secret), a CSRF token and an expiry, signed with
HMAC-SHA256 under ``TRIAGE_UI_SECRET`` (a random secret per process when unset). Standard library
only: a dozen lines of HMAC need no itsdangerous. Every request re-reads the key, so revoking it
signs its sessions out at once. The cookie is HttpOnly and SameSite=Strict, and every form that
changes something also carries the session's CSRF token, checked in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from triage.models import ApiKey, Scope

COOKIE = "triage_ui"
LOGIN_COOKIE = "triage_ui_login"  # the CSRF token of the sign-in form, before any session
SESSION_SECONDS = 12 * 3600


class Redirect(Exception):
    """Raised by a dependency to send the browser elsewhere (the sign-in page)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class Forbidden(Exception):
    """Answered as a 403 page: a read key trying to correct, or a missing CSRF token."""


def ui_secret(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "ui_secret", None) is None:
        configured = state.settings.ui_secret
        state.ui_secret = (
            configured.get_secret_value().encode() if configured else secrets.token_bytes(32)
        )
    return state.ui_secret


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def unsign(secret: bytes, value: str) -> dict[str, Any] | None:
    body, _, mac = value.rpartition(".")
    expected = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
        return None
    return payload


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    # Secure is left to the deployment's TLS proxy: `triage serve` itself speaks plain HTTP on
    # loopback, where a Secure cookie would never be sent back.
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/ui")


def start_session(request: Request, response: Response, key: ApiKey) -> None:
    payload = {"k": key.id, "c": secrets.token_urlsafe(24), "exp": time.time() + SESSION_SECONDS}
    set_cookie(response, COOKIE, sign(ui_secret(request), payload), SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: the key, and the CSRF token their forms must carry."""

    key: ApiKey
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.key.scope == Scope.admin


def current_viewer(request: Request) -> Viewer:
    payload = unsign(ui_secret(request), request.cookies.get(COOKIE, ""))
    key = None
    if payload is not None:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            key = session.get(ApiKey, payload.get("k"))
    if key is None or key.revoked_at is not None or key.scope == Scope.ingest:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Redirect("/ui/login?next=" + quote(target, safe=""))
    return Viewer(key=key, csrf=str(payload["c"]))  # type: ignore[index]


def csrf_checked(
    viewer: Annotated[Viewer, Depends(current_viewer)],
    csrf_token: Annotated[str, Form()] = "",
) -> Viewer:
    if not csrf_token or not hmac.compare_digest(csrf_token, viewer.csrf):
        raise Forbidden("This form is missing its security token or it expired; reload the page.")
    return viewer


def admin_checked(viewer: Annotated[Viewer, Depends(csrf_checked)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden(f"This key has scope '{viewer.key.scope}'; corrections need 'admin'.")
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
# A signed-in viewer whose form carried the session's CSRF token.
FormViewer = Annotated[Viewer, Depends(csrf_checked)]
# The same, with an admin key: everything that corrects or manages.
AdminViewer = Annotated[Viewer, Depends(admin_checked)]
