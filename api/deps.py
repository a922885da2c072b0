"""Every dependency a route can ask for, as an ``Annotated`` alias."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from api.errors import ApiError
from api.security import retry_after_header
from triage import db, store
from triage.config import Settings
from triage.db import is_sqlite
from triage.models import ApiKey, Scope, as_utc, utcnow
from triage.redaction import RedactRecords, records_redactor


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    # Routes that write commit explicitly before answering, so a client never gets a 2xx for
    # something that was not stored.
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    """A session that takes SQLite's write lock up front: a transaction that reads first and
    writes later cannot upgrade its lock while another writer is active, and fails at once."""
    engine = request.app.state.engine
    if is_sqlite(engine):
        # An engine view with the option set; the transaction still begins lazily, at the
        # route's first statement, after authentication.
        engine = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with Session(engine, expire_on_commit=False) as session:
        yield session


def app_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(app_settings)]
# For work that spans several short transactions around a slow call (an issue's export).
EngineDep = Annotated[Engine, Depends(app_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


def redactor(settings: SettingsDep) -> RedactRecords:
    return records_redactor(settings)


# Redacts what a client sent besides the text, on its way out; loads spaCy at its first use.
RedactDep = Annotated[RedactRecords, Depends(redactor)]

# Which scopes each key scope grants.
GRANTS: dict[str, set[Scope]] = {
    Scope.ingest: {Scope.ingest},
    Scope.read: {Scope.read},
    Scope.admin: {Scope.ingest, Scope.read, Scope.admin},
}


def require(scope: Scope) -> Callable[..., ApiKey]:
    def check(request: Request, settings: SettingsDep) -> ApiKey:
        # Checked before the lookup: while an address is throttled, its guesses cost nothing.
        address = request.client.host if request.client else ""
        failures = request.app.state.auth_failures
        _refuse_if_throttled(failures.peek(address), failures.per_minute)
        header = request.headers.get("authorization", "")
        kind, _, secret = header.partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise ApiError(
                401,
                "unauthorized",
                "Send an API key as 'Authorization: Bearer <key>'; `triage keys create` makes one.",
            )
        # Its own short session: the route's transaction must not start with this read.
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            key = store.find_api_key(session, secret=secret.strip())
        if key is None:
            failures.acquire(address)
            raise ApiError(401, "unauthorized", "Unknown or revoked API key.")
        # Counted before the scope check, so a key hammering the wrong endpoint is slowed too.
        limiter = request.app.state.rate_limiter
        wait = limiter.acquire(key.id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests with this key (limit {limiter.per_minute} a minute); "
                "retry after the number of seconds in the Retry-After header.",
                details={"retry_after_seconds": round(wait, 3)},
                headers={"Retry-After": retry_after_header(wait)},
            )
        if scope not in GRANTS.get(key.scope, set()):
            raise ApiError(
                403,
                "forbidden",
                f"This key has scope '{key.scope}'; this endpoint needs '{scope.value}'.",
            )
        last_used = as_utc(key.last_used_at)
        if last_used is None or utcnow() - last_used > timedelta(
            seconds=settings.api_key_touch_seconds
        ):
            with db.session_scope(request.app.state.engine) as session:
                store.touch_api_key(session, key_id=key.id)  # type: ignore[arg-type]
        return key

    return check


def _refuse_if_throttled(wait: float, per_minute: int) -> None:
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many failed authentications from this address (limit {per_minute} a minute); "
            "check the key, then retry after the number of seconds in the Retry-After header.",
            details={"retry_after_seconds": round(wait, 3)},
            headers={"Retry-After": retry_after_header(wait)},
        )


IngestKey = Annotated[ApiKey, Depends(require(Scope.ingest))]
ReadKey = Annotated[ApiKey, Depends(require(Scope.read))]
AdminKey = Annotated[ApiKey, Depends(require(Scope.admin))]


async def raw_body(request: Request) -> bytes:
    # Webhook signatures are over the exact bytes sent, so those routes read the body unparsed.
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
