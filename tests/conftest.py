"""Shared fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL tests run when ``TRIAGE_TEST_POSTGRES_URL`` points at a server (``.ci/run`` sets it).
Each test run creates its own database ``triage_test_<pid>`` and drops it at the end; databases
left behind by runs that died are dropped at the start, so a dirty server starts clean.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from triage import db, store
from triage.config import Settings
from triage.models import Scope

PG_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need TRIAGE_TEST_POSTGRES_URL (set by .ci/run)")
    # pre-ping: tests/reliability/test_faults.py restarts the server, which kills pooled
    # connections.
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"triage_test_{os.getpid()}"
    with admin.connect() as connection:
        stale = connection.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE 'triage_test_%'")
        ).scalars()
        for datname in stale:
            pid = int(datname.rsplit("_", 1)[-1]) if datname.rsplit("_", 1)[-1].isdigit() else 0
            if datname == name or not _pid_alive(pid):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db.upgrade(url)
    yield url
    db.get_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


TABLES = (
    "digest, audit_log, api_key, pipeline_run, link, membership, unit, embedding, issue, "
    "model_output, model_output_key, feedback, output_rollup, rollup_watermark"
)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'triage.db'}"
        db.upgrade(url)
        return url
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


def _truncate(url: str) -> None:
    """Empty every table for the next test. TRUNCATE waits for every lock on them, so a
    connection an earlier test left in a transaction (a worker process still alive, a session
    kept by a reference cycle) would make it wait for ever: CI once hung here for an hour. It
    waits ``lock_timeout`` instead, then ends the backends holding locks on these tables, says
    which in a warning, and tries again."""
    gc.collect()  # a session kept only by a reference cycle lets go of its locks here
    engine = db.get_engine(url)
    for attempt in range(3):
        try:
            with engine.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '15s'"))
                connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            return
        except OperationalError as e:
            if "lock timeout" not in str(e) or attempt == 2:
                raise
            ended = _end_lock_holders(engine)
            warnings.warn(f"TRUNCATE waited 15 s for locks; ended the holders: {ended}",
                          stacklevel=1)  # fmt: skip


def _end_lock_holders(engine) -> list[str]:  # type: ignore[no-untyped-def]
    tables = [name.strip() for name in TABLES.split(",")]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        holders = connection.execute(text(
            "SELECT DISTINCT a.pid, a.application_name, a.state, left(a.query, 120) "
            "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND c.relname = ANY(:tables) AND a.pid <> pg_backend_pid() "
            "AND a.datname = current_database()"), {"tables": tables}).all()  # fmt: skip
        for pid, *_ in holders:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    return [
        f"pid {pid} ({app or 'no name'}, {state}): {query}" for pid, app, state, query in holders
    ]


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a test: its own database, the fake embedder, and the same in the env so the
    CLI (which reads the environment) sees them too."""
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    monkeypatch.setenv("TRIAGE_EMBEDDING_BACKEND", "fake")
    from triage.config import get_settings

    get_settings.cache_clear()
    yield Settings()
    get_settings.cache_clear()


@pytest.fixture
def engine(settings: Settings):  # type: ignore[no-untyped-def]
    return db.get_engine(settings.database_url)


@pytest.fixture
def make_key(engine) -> Callable[[Scope], str]:  # type: ignore[no-untyped-def]
    def make(scope: Scope) -> str:
        with db.session_scope(engine) as session:
            _, secret = store.create_api_key(session, scope=scope, name=f"test-{scope.value}")
        return secret

    return make


@pytest.fixture
def client(settings: Settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The app under a real uvicorn on loopback, for tests that need real concurrency."""
    import uvicorn

    from api.main import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
