"""Engines, sessions and schema migrations, for SQLite (embedded) and PostgreSQL (team).

The schema is owned by Alembic (``triage/migrations``). The API and the worker refuse to start
on an outdated schema; ``triage db upgrade`` fixes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlmodel import Session

from triage.errors import ConfigError, DatabaseUnavailableError, SchemaOutdatedError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# How long SQLite waits for another connection's write lock before "database is locked".
SQLITE_BUSY_MS = 30_000
# Connections the API's pool holds beyond TRIAGE_API_THREADS, for what runs outside a request's
# own session: the web app's sign-in and viewer lookups, /readyz, a key's last_used_at.
API_SPARE_CONNECTIONS = 4
# A pooled PostgreSQL connection idle for longer is pinged before use; one in steady use is not
# (a ping is a round trip, and each request checks out a connection).
PING_AFTER_IDLE_SECONDS = 1.0

T = TypeVar("T")


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling does not emit BEGIN before SELECT, which breaks
    # SELECT-then-UPDATE claims; this is SQLAlchemy's documented recipe to take it over. A
    # connection may ask for "BEGIN IMMEDIATE" (take the write lock first) via execution options.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # A caller with its own bound on waiting for the write lock (``session_scope``'s
        # ``lock_wait``) sets the busy timeout for this BEGIN only.
        busy_ms = options.get("sqlite_busy_ms")
        if busy_ms is None:
            conn.exec_driver_sql(options.get("sqlite_begin", "BEGIN"))
            return
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            conn.exec_driver_sql(options.get("sqlite_begin", "BEGIN"))
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle: a server restart or a
    firewall drops idle connections, and a request should not fail on one. SQLAlchemy's
    ``pool_pre_ping`` pings at every checkout, a round trip per request."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # ``record.info`` starts empty for each new DBAPI connection: a fresh one is not pinged.
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as e:
            # The pool discards this connection and checks out another (up to three times).
            raise DisconnectionError(f"stale pooled connection: {e}") from e


def parse_url(url: str) -> URL:
    """The URL, or a ConfigError that says how to write it."""
    try:
        parsed = make_url(url)
    except Exception as e:
        raise ConfigError(f"TRIAGE_DATABASE_URL is not a valid database URL: {url!r}") from e
    scheme = parsed.drivername.split("+")[0]
    # Heroku-style `postgres://` names no dialect SQLAlchemy knows, and a bare `postgresql://`
    # picks psycopg2, which triage does not ship: both fail later with a plugin error.
    if scheme == "postgres" or parsed.drivername == "postgresql":
        fixed = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
        raise ConfigError(
            f"TRIAGE_DATABASE_URL starts with {parsed.drivername}://, which triage cannot use; "
            f"write it as postgresql+psycopg://... (here: {fixed})."
        )
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or None for other databases and in-memory SQLite."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def get_engine(url: str) -> Engine:
    """One engine per URL for the life of the process (the CLI and the worker)."""
    return _engine(url, None, 30.0)


def get_api_engine(url: str, *, threads: int, wait_seconds: float) -> Engine:
    """The API's engine: a pool that fits its ``threads`` (TRIAGE_API_THREADS), plus
    ``API_SPARE_CONNECTIONS``, and never grows past that. A checkout that finds every connection
    busy for ``wait_seconds`` raises ``sqlalchemy.exc.TimeoutError``, which the API answers 503
    with Retry-After. The in-process worker keeps its own engine (``get_engine``), so it never
    takes a connection the API counted on."""
    return _engine(url, threads + API_SPARE_CONNECTIONS, wait_seconds)


@lru_cache(maxsize=16)
def _engine(url: str, pool_size: int | None, pool_timeout: float) -> Engine:
    parsed = parse_url(url)
    # None: SQLAlchemy's default pool for SQLite (5, overflow 10) and 10, overflow 20 for
    # PostgreSQL, for the CLI's and the worker's few threads.
    sized: dict[str, Any] = {"pool_timeout": pool_timeout}
    if pool_size is not None:
        sized.update(pool_size=pool_size, max_overflow=0)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.database in (None, "", ":memory:"):
            sized = {}  # one connection, shared (SingletonThreadPool): nothing to size
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **sized
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, **({"pool_size": 10, "max_overflow": 20} | sized))
    _ping_when_idle(engine)
    return engine


@contextmanager
def session_scope(
    engine: Engine, *, write_lock: bool = False, lock_wait: float | None = None
) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    ``write_lock`` takes SQLite's write lock at BEGIN, so a read-then-write claim cannot race
    another writer; on PostgreSQL row locks (``FOR UPDATE SKIP LOCKED``) do that job instead.
    ``lock_wait`` bounds, in seconds, how long the transaction waits for a lock another
    connection holds: on SQLite for the write lock taken at BEGIN (so with ``write_lock``), on
    PostgreSQL for any lock (its lock_timeout). Unset, SQLite waits 30 s and PostgreSQL as long
    as it takes.
    """
    with Session(engine, expire_on_commit=False) as session:
        if is_sqlite(engine):
            options: dict[str, Any] = {}
            if write_lock:
                options["sqlite_begin"] = "BEGIN IMMEDIATE"
            if lock_wait is not None:
                options["sqlite_busy_ms"] = max(int(lock_wait * 1000), 1)
            if options:
                session.connection(execution_options=options)
        elif lock_wait is not None:
            # Whole milliseconds, at least one: 0 would mean no limit.
            ms = max(int(lock_wait * 1000), 1)
            session.execute(text(f"SET LOCAL lock_timeout = {ms}"))
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def write_retrying(engine: Engine, work: Callable[[Session], T], *, wait: float, what: str) -> T:
    """``work(session)`` in one write transaction, retried while the database is locked or
    unreachable, for up to ``wait`` seconds in all; then a ``DatabaseUnavailableError`` that
    says ``what`` did not happen. For commands a person runs next to a busy server: on SQLite
    the worker holds the write lock while it processes a batch."""
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        try:
            with session_scope(engine, write_lock=True, lock_wait=max(remaining, 0.0)) as session:
                return work(session)
        except OperationalError as e:
            if time.monotonic() + 0.2 >= deadline:
                raise DatabaseUnavailableError(
                    f"The database stayed busy for {wait:g} s ({_reason(engine, e)}), so "
                    f"{what}. Try again, or wait longer with --wait."
                ) from e
            time.sleep(0.2)


def _reason(engine: Engine, error: OperationalError) -> str:
    message = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
    if is_sqlite(engine) and "locked" in message:
        return (
            "another process holds its write lock: a `triage worker`, or `triage serve` with "
            "its worker, processing tickets"
        )
    return message


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    engine = get_engine(url)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def schema_state(engine: Engine) -> tuple[str | None, str | None]:
    """(revision in the database, newest revision shipped)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as e:
        raise DatabaseUnavailableError(
            f"Cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{e.orig}. Check TRIAGE_DATABASE_URL and that the server is running."
        ) from e
    return current, head


def ensure_schema(url: str, *, allow_upgrade: bool = False) -> None:
    """Refuse to run on an outdated schema, or bring a SQLite file up to date when allowed."""
    engine = get_engine(url)
    current, head = schema_state(engine)
    if current == head:
        return
    if allow_upgrade and is_sqlite(engine):
        upgrade(url)
        return
    state = "has no schema yet" if current is None else f"is at revision {current}"
    raise SchemaOutdatedError(
        f"The database {state}; this version of triage needs revision {head}. "
        "Run `triage db upgrade` (with the same TRIAGE_DATABASE_URL) and start again.",
        details={"current": current, "head": head},
    )


def wait_until_reachable(url: str, *, timeout: float) -> None:
    """Retry connecting for up to ``timeout`` seconds (a container's prestart step)."""
    engine = get_engine(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except OperationalError as e:
            if time.monotonic() >= deadline:
                raise DatabaseUnavailableError(
                    f"Cannot reach the database at "
                    f"{engine.url.render_as_string(hide_password=True)}: {e.orig}"
                ) from e
            time.sleep(1)
