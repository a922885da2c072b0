"""The refresh lock (issue 17): one refresh at a time across processes, taken without waiting; a
worker that finds it taken skips its refresh, says so, and keeps processing tickets. On SQLite
(a file lock) and PostgreSQL (a session-level advisory lock)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from triage import store
from triage.worker import Worker


class _Pipeline:
    """A stub pipeline: ``pending`` tickets to process, one batch a round; counts refreshes."""

    def __init__(self, pending: int = 0) -> None:
        self.pending = pending
        self.refreshes = 0

    def process_pending(self, engine, *, until=None):  # type: ignore[no-untyped-def]
        done, self.pending = self.pending, 0
        return SimpleNamespace(processed=done, failed=0)

    def refresh(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.refreshes += 1


def test_refresh_lock_is_held_once_and_released(settings, engine):  # type: ignore[no-untyped-def]
    with store.refresh_lock(engine) as first, store.refresh_lock(engine) as second:
        assert (first, second) == (True, False)
    with store.refresh_lock(engine) as again:
        assert again


def test_refresh_lock_excludes_another_process(settings, engine):  # type: ignore[no-untyped-def]
    """Another process (another machine, as PostgreSQL sees it) finds the lock taken."""
    script = textwrap.dedent(f"""
        from triage import db, store
        with store.refresh_lock(db.get_engine({settings.database_url!r})) as held:
            print(held)
    """)

    def other() -> str:
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()  # fmt: skip

    with store.refresh_lock(engine) as held:
        assert held
        assert other() == "False"
    assert other() == "True"


def test_refresh_lock_worker_skips_its_refresh_and_keeps_processing(settings, engine, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    pipeline = _Pipeline(pending=5)
    worker = Worker(settings, pipeline=pipeline)  # type: ignore[arg-type]
    with store.refresh_lock(engine) as held:  # another worker is refreshing
        assert held
        assert worker.tick() == 5  # processed all the same
        pipeline.pending = 3
        assert worker.tick() == 3
        assert worker.tick() == 0  # idle: tries again, skips again
    assert pipeline.refreshes == 0
    assert worker.refreshes_skipped >= 2
    # One line per wait, not one per try.
    assert caplog.text.count("refresh skipped: another worker holds the refresh lock") == 1
    assert "processed 5, failed 0" in caplog.text and "processed 3, failed 0" in caplog.text

    # The lock released, the next idle round refreshes: the other refresh may have missed this
    # worker's tickets.
    assert worker.tick() == 0
    assert pipeline.refreshes == 1
    worker.tick()
    assert pipeline.refreshes == 1  # nothing new since
