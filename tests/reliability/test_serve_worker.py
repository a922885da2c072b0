"""``triage serve``'s worker is a child process (issue 14: in the API's process its embedding held
the GIL, and single POSTs waited seconds behind it): it runs at a lower CPU priority with the
server's settings, processes what arrives, and never outlives the server, whether the server
is stopped with SIGTERM or killed.

States and counts only, never timings: each wait is a bound on liveness, not a measurement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from tests.conftest import auth
from tests.support.servers import free_port, start, stop, wait_ready
from triage import db, store
from triage.models import Feedback, FeedbackStatus, Scope
from triage.worker import SERVE_WORKER_NICENESS


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRIAGE_DATABASE_URL": database_url,
        "TRIAGE_EMBEDDING_BACKEND": "fake",
        "TRIAGE_WORKER_POLL_SECONDS": "0.2",
        "TRIAGE_WORKER_REFRESH_SECONDS": "1",
    }


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None once the process
    is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields


def _nice(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[16])


def _worker_children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` and whose command line runs ``triage.worker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields and int(fields[1]) == pid and b"triage.worker" in cmdline:
            found.append(int(entry.name))
    return found


def _wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _serve(env: dict[str, str], log: Any, *extra: str) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    process = start(["serve", "--port", str(port), *extra], env, log)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process)
    return process, base


def _processed(engine: Any) -> int:
    with db.session_scope(engine) as session:
        query = select(Feedback.id).where(col(Feedback.status) == FeedbackStatus.processed.value)
        return len(session.exec(query).all())


def test_serve_worker_is_a_lower_priority_child_and_stops_with_the_server(
    database_url, settings, engine, tmp_path
):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        _, secret = store.create_api_key(session, scope=Scope.ingest, name="serve-worker")
    with open(tmp_path / "serve.log", "wb") as log:
        process, base = _serve(_env(database_url), log)
        try:
            (child,) = _wait_until(lambda: _worker_children(process.pid), 60, "a worker child")
            # It lowers its own priority first thing, once it has read the settings.
            lower = _nice(process.pid) + SERVE_WORKER_NICENESS
            _wait_until(lambda: _nice(child) == lower, 60, f"the worker at niceness {lower}")

            ticket = {"source": "t", "external_id": "1", "text": "The export button does nothing."}
            response = httpx.post(f"{base}/v1/feedback", json=ticket, headers=auth(secret))
            assert response.status_code == 202, response.text
            _wait_until(lambda: _processed(engine) == 1, 300, "the ticket processed by the child")

            # SIGTERM to the server alone, as systemd or docker stop sends it.
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            _wait_until(lambda: _stat(child) is None, 60, "the worker gone with the server")
        finally:
            stop(process)
    assert "Traceback" not in (tmp_path / "serve.log").read_text(errors="replace")


def test_serve_worker_exits_when_the_server_is_killed(database_url, settings, tmp_path):  # type: ignore[no-untyped-def]
    """SIGKILL leaves the server no chance to stop its worker: the child sees its pipe close."""
    with open(tmp_path / "serve.log", "wb") as log:
        process, _ = _serve(_env(database_url), log)
        children: list[int] = []
        try:
            children = _wait_until(lambda: _worker_children(process.pid), 60, "a worker child")
            process.kill()
            process.wait(60)
            _wait_until(lambda: _stat(children[0]) is None, 120, "the orphaned worker gone")
        finally:
            stop(process)  # its group: an orphan the test failed on is ended too


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_no_worker_starts_no_child(database_url, settings, tmp_path):  # type: ignore[no-untyped-def]
    with open(tmp_path / "serve.log", "wb") as log:
        process, _ = _serve(_env(database_url), log, "--no-worker")
        try:
            assert _worker_children(process.pid) == []
        finally:
            stop(process)
