"""Every dependency a route can ask for, as an ``Annotated`` alias.

A request that touches the database first takes one of ``TRIAGE_API_THREADS`` slots
(``ConnectionGate``), waiting for one in the event loop, without a thread, for at most
``TRIAGE_API_DB_WAIT_SECONDS``; then it is answered 503 ``server_busy`` with Retry-After. The
API's pool (``db.get_api_engine``) holds a connection for every slot plus spare ones, so a
request holding a slot never waits for the pool. Without the slots, requests that had run their
route kept their connection while they waited for a thread to serialise the answer, and 100
parallel requests ran a pool of 15 dry: 500s after a 30 s pool timeout.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import lru_cache
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import object_session
from sqlmodel import Session

from api.errors import ApiError
from api.security import RateLimiter, retry_after_header
from triage import db, store
from triage.config import Settings
from triage.db import is_sqlite
from triage.models import ApiKey, Scope, as_utc, utcnow
from triage.redaction import RedactRecords, records_redactor

logger = logging.getLogger("triage.api")


async def app_settings(request: Request) -> Settings:
    # async: a plain function would cost every request a hop to a worker thread.
    return request.app.state.settings


class ConnectionGate:
    """At most ``size`` requests hold a database session at once; the rest wait their turn in
    the event loop, each for at most ``wait_seconds``."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self.size, self.wait_seconds = size, wait_seconds
        self._semaphore: anyio.Semaphore | None = None
        self._loop: object = None

    async def acquire(self) -> bool:
        """True once a slot is taken; False when none came free in time."""
        # One semaphore per event loop (a TestClient without ``with`` runs each request in a
        # loop of its own).
        loop = anyio.lowlevel.current_token()
        if self._semaphore is None or self._loop != loop:
            self._semaphore, self._loop = anyio.Semaphore(self.size), loop
        with anyio.move_on_after(self.wait_seconds):
            await self._semaphore.acquire()
            return True
        return False

    def release(self) -> None:
        assert self._semaphore is not None
        self._semaphore.release()


async def db_slot(request: Request) -> AsyncIterator[None]:
    gate: ConnectionGate = request.app.state.db_gate
    if not await gate.acquire():
        raise ApiError(
            503,
            "server_busy",
            f"Every database connection of this server was busy for {gate.wait_seconds:g} s; "
            "nothing was done. Retry after the number of seconds in the Retry-After header.",
            details={"retry_after_seconds": 1},
            headers={"Retry-After": retry_after_header(1)},
        )
    try:
        yield
    finally:
        gate.release()


# Function scope: the slot and the session end when the route's answer is ready, before it is
# sent, so a slow client holds no connection.
DbSlot = Annotated[None, Depends(db_slot, scope="function")]


async def _close(session: Session) -> None:
    if session.in_transaction():
        # Returning the connection rolls back: a round trip, so not in the event loop. A limiter
        # of its own: closing must not wait behind requests for one of the API's threads.
        await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
    else:
        session.close()  # nothing checked out (a route that committed): no I/O


async def get_session(request: Request, _slot: DbSlot) -> AsyncIterator[Session]:
    # Routes that write commit explicitly before answering, so a client never gets a 2xx for
    # something that was not stored. The session connects at the route's first statement.
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        await _close(session)


@lru_cache(maxsize=16)
def _write_engine(engine: Engine) -> Engine:
    # An engine view with the option set; the transaction still begins lazily, at the route's
    # first statement, after authentication.
    return engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")


async def get_write_session(request: Request, _slot: DbSlot) -> AsyncIterator[Session]:
    """A session that takes SQLite's write lock up front: a transaction that reads first and
    writes later cannot upgrade its lock while another writer is active, and fails at once."""
    engine = request.app.state.engine
    if is_sqlite(engine):
        engine = _write_engine(engine)
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        await _close(session)


@lru_cache(maxsize=16)
def _autocommit_engine(engine: Engine) -> Engine:
    # The same pool; each connection is put back to the default isolation level on return.
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def get_ingest_session(request: Request, _slot: DbSlot) -> AsyncIterator[Session]:
    """For storing tickets (``POST /v1/feedback``). On PostgreSQL each statement commits on its
    own: a new ticket is one ``INSERT ... RETURNING``, one round trip to the server instead of
    four (BEGIN, the insert, a read-back, COMMIT), each of which waited for the CPU on a busy
    host. Nothing there needs two statements in one transaction: a batch is one INSERT and the
    rest only reads. On SQLite, as ``get_write_session``."""
    engine = request.app.state.engine
    engine = _write_engine(engine) if is_sqlite(engine) else _autocommit_engine(engine)
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        await _close(session)


async def app_engine(request: Request, _slot: DbSlot) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(app_settings)]
# For work that spans several short transactions around a slow call (an issue's export).
EngineDep = Annotated[Engine, Depends(app_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]
IngestSessionDep = Annotated[Session, Depends(get_ingest_session, scope="function")]


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


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    def authorize(request: Request, cached: ApiKey | None) -> ApiKey:
        # Checked before the lookup: while an address is throttled, its guesses cost nothing.
        address = request.client.host if request.client else ""
        failures = request.app.state.auth_failures
        _refuse_if_throttled(failures.peek(address), failures.per_minute)
        secret = _bearer_secret(request)
        if not secret:
            raise ApiError(
                401,
                "unauthorized",
                "Send an API key as 'Authorization: Bearer <key>'; `triage keys create` makes one.",
            )
        engine, cache = request.app.state.engine, request.app.state.key_cache
        key = cached or cache.get(secret)
        if key is None:
            # Its own short session: the route's transaction must not start with this read
            # (on SQLite a write route's begins by taking the write lock).
            with Session(engine, expire_on_commit=False) as session:
                key = store.find_api_key(session, secret=secret)
            if key is not None:
                cache.put(secret, key)
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
        return key

    async def check(request: Request, settings: SettingsDep, _slot: DbSlot) -> ApiKey:
        # Most requests need no I/O to authorize (the key in this process's cache, the limits in
        # its own buckets): that is done right here, in the event loop, saving each a hop to a
        # worker thread and back. A lookup, Redis or a due last_used_at go to a thread.
        state = request.app.state
        cached = None
        if all(isinstance(limiter, RateLimiter) for limiter in (state.rate_limiter,
                                                                state.auth_failures)):  # fmt: skip
            cached = state.key_cache.get(_bearer_secret(request))
        if cached is not None:
            key = authorize(request, cached)
        else:
            key = await anyio.to_thread.run_sync(authorize, request, None)
        if state.key_cache.touch_due(key, settings.api_key_touch_seconds):
            await anyio.to_thread.run_sync(_touch, state.engine, key)
        return key

    return check


def _bearer_secret(request: Request) -> str:
    """The key sent as ``Authorization: Bearer <key>``; empty when there is none."""
    kind, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if kind.lower() == "bearer" else ""


def _touch(engine: Engine, key: ApiKey) -> None:
    """Store the key's last_used_at, unless that means waiting for a lock: bookkeeping must not
    hold up a read while the worker holds SQLite's write lock (it is tried again after
    TRIAGE_API_KEY_TOUCH_SECONDS)."""
    try:
        with db.session_scope(engine, write_lock=True, lock_wait=0.05) as session:
            store.touch_api_key(session, key_id=key.id)  # type: ignore[arg-type]
    except OperationalError:
        logger.debug("last_used_at of key %s not stored: the database is busy", key.id)


class KeyCache:
    """The API keys this process found, by the hash of their secret, trusted for ``ttl``
    seconds: most requests then need no lookup (one session per request, not two).

    Revoking a key through this process (the web app) clears every cache at once, through the
    ORM events below; a revocation elsewhere (``triage keys revoke``, another API process)
    reaches this process within ``ttl``. Unknown keys are not cached: a key made a moment ago
    works at its first request. ``ttl=0`` looks every key up.
    """

    MAX_KEYS = 10_000

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._keys: dict[str, tuple[ApiKey, float]] = {}
        self._touched: dict[Any, float] = {}
        self._lock = threading.Lock()
        _CACHES.add(self)

    def get(self, secret: str) -> ApiKey | None:
        if self.ttl <= 0:
            return None
        found = self._keys.get(store.hash_key(secret))
        if found is None or self.clock() >= found[1]:
            return None
        return found[0]

    def put(self, secret: str, key: ApiKey) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._keys) >= self.MAX_KEYS:
                self._keys.clear()
            self._keys[store.hash_key(secret)] = (key, self.clock() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def touch_due(self, key: ApiKey, every_seconds: float) -> bool:
        """Whether to store the key's last_used_at now: at most once every ``every_seconds``
        per key and process, counting from the stored value the first time."""
        with self._lock:
            now = self.clock()
            last = self._touched.get(key.id)
            if last is None:
                used = as_utc(key.last_used_at)
                last = now - (utcnow() - used).total_seconds() if used else float("-inf")
            if now - last <= every_seconds:
                self._touched[key.id] = last
                return False
            self._touched[key.id] = now
            return True


_CACHES: weakref.WeakSet[KeyCache] = weakref.WeakSet()


def _clear_key_caches() -> None:
    for cache in list(_CACHES):
        cache.clear()


@event.listens_for(ApiKey, "after_update")
@event.listens_for(ApiKey, "after_delete")
def _key_changed(_mapper: Any, _connection: Any, key: ApiKey) -> None:
    # At the flush, and again at the commit: a request between the two may have cached the row
    # as it was before.
    _clear_key_caches()
    session = object_session(key)
    if session is not None:
        session.info["api_key_changed"] = True


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop("api_key_changed", False):
        _clear_key_caches()


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
