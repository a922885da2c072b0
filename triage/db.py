"""Engines, sessions and schema migrations, for SQLite (embedded) and PostgreSQL (team).

The schema is owned by Alembic (``triage/migrations``). The API and the worker refuse to start
on an outdated schema; ``triage db upgrade`` fixes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from triage.errors import ConfigError, DatabaseUnavailableError, SchemaOutdatedError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


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


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL for the life of the process."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@contextmanager
def session_scope(engine: Engine, *, write_lock: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    ``write_lock`` takes SQLite's write lock at BEGIN, so a read-then-write claim cannot race
    another writer; on PostgreSQL row locks (``FOR UPDATE SKIP LOCKED``) do that job instead.
    """
    with Session(engine, expire_on_commit=False) as session:
        if write_lock and is_sqlite(engine):
            session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


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
