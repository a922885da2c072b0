"""The worker: picks up pending tickets, processes them, refreshes the issues now and then, and
keeps the weekly digest's schedule.

Run it as ``triage worker`` (one or more processes; on PostgreSQL they share the queue through
``FOR UPDATE SKIP LOCKED``), or let ``triage serve`` start one as its child process
(``BackgroundWorker``).

Several workers, on one machine or many, refresh one at a time: the refresh runs under
``store.refresh_lock``, taken without waiting. A worker that finds it taken skips its refresh,
says so in its log and ``refreshes_skipped``, goes on processing tickets, and tries again at its
next idle round, since the other worker's refresh may have started before its latest tickets.
Once a day one of them deletes old model outputs that no ticket links to (``triage.retention``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from pydantic import SecretStr

from triage import db, retention, store
from triage.config import Settings
from triage.digest import DigestSchedule, schedule_enabled
from triage.link import SignalParams

if TYPE_CHECKING:
    from triage.pipeline import Pipeline

logger = logging.getLogger("triage.worker")

# How often an idle worker looks up whether the daily prune is due.
PRUNE_CHECK_SECONDS = 3600.0
# How far below the API's CPU priority ``triage serve``'s worker runs (os.nice): on a busy host
# the kernel then gives the API's requests the CPU first, and the worker what is left.
SERVE_WORKER_NICENESS = 10


class Worker:
    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        if pipeline is None:
            # Imported here: it loads spaCy and the models' code, which a process that only
            # starts a worker (``triage serve``'s API) never needs.
            from triage.pipeline import Pipeline

            pipeline = Pipeline(settings)
        self.settings = settings
        self.pipeline = pipeline
        self.engine = db.get_engine(settings.database_url)
        self._stop = threading.Event()
        # Refresh once on start: a worker killed after its last batch but before refreshing
        # leaves processed units that no issue has seen, and nothing pending to mark it dirty.
        self._dirty = True
        self._last_refresh = 0.0
        self.refreshes_skipped = 0
        self._skip_streak = 0
        # The prune's last run is in the database (once a day across workers and restarts); this
        # only spaces out looking it up.
        self._prune_checked = -float("inf")
        self.digests = DigestSchedule(self.engine, settings) if schedule_enabled(settings) else None

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> int:
        """One round: process what is pending, refresh issues when due, and once caught up make
        and send the weekly digest when it is due. Returns tickets done."""
        stats = self.pipeline.process_pending(
            self.engine, until=lambda: self._stop.is_set() or self._refresh_due()
        )
        done = stats.processed + stats.failed
        self._dirty = self._dirty or stats.processed > 0
        due = self._refresh_due()
        if self._dirty and (due or done == 0):
            self._refresh()
        if done:
            logger.info("processed %d, failed %d", stats.processed, stats.failed)
        else:
            # Only with the queue empty, so the issues were just refreshed: a digest is stored for
            # good, and one made during a backlog would miss that week's late tickets forever.
            # (Still dirty: this worker's refresh was skipped; the next round tries again.)
            if not self._dirty:
                self._run_digest_schedule()
            self._prune_when_due()
        return done

    def _refresh_due(self) -> bool:
        return time.monotonic() - self._last_refresh >= self.settings.worker_refresh_seconds

    def _refresh(self) -> None:
        # Whether it ran or was skipped, the next try waits for worker_refresh_seconds, or for
        # the next idle round.
        self._last_refresh = time.monotonic()
        with store.refresh_lock(self.engine) as held:
            if held:
                self.pipeline.refresh(self.engine)
        if held:
            self._dirty = False
            self._skip_streak = 0
            return
        self.refreshes_skipped += 1
        self._skip_streak += 1
        # Still dirty: the refresh running elsewhere may have read the units before this
        # worker's latest batch. Idle, it tries every poll; one line per wait, not per try.
        logger.log(
            logging.INFO if self._skip_streak == 1 else logging.DEBUG,
            "refresh skipped: another worker holds the refresh lock (%d skipped so far); "
            "processing goes on",
            self.refreshes_skipped,
        )

    def _prune_when_due(self) -> None:
        days = self.settings.output_retention_days
        if days <= 0 or time.monotonic() - self._prune_checked < PRUNE_CHECK_SECONDS:
            return
        self._prune_checked = time.monotonic()
        try:
            if not retention.prune_due(self.engine):
                return
            # Under the refresh lock, so two workers never prune at once; one that finds it
            # taken looks again at its next check.
            with store.refresh_lock(self.engine) as held:
                if held and retention.prune_due(self.engine):
                    retention.prune_outputs(  # logs the count
                        self.engine,
                        retention_days=days,
                        signals=SignalParams.from_settings(self.settings),
                    )
        except Exception:
            # Like the digest: never a reason to stop processing tickets.
            logger.exception("pruning old model outputs failed; trying again later")

    def _run_digest_schedule(self) -> None:
        if self.digests is None:
            return
        try:
            self.digests.run()
        except Exception:
            # The digest must never stop tickets being processed; the schedule looks again
            # after digest_retry_minutes.
            logger.exception("weekly digest failed; trying again later")

    def run_forever(self) -> None:
        db.ensure_schema(
            self.settings.database_url, allow_upgrade=self.settings.auto_upgrade_sqlite
        )
        backoff = self.settings.worker_poll_seconds
        while not self._stop.is_set():
            try:
                done = self.tick()
                backoff = self.settings.worker_poll_seconds
            except Exception:
                # A database restart or a bad batch must not end the worker; the batch's
                # transaction was rolled back, so it will be tried again.
                logger.exception("worker round failed; retrying in %.0f s", backoff)
                done = 0
                backoff = min(backoff * 2, 60.0)
            if not done:
                self._stop.wait(backoff)


class BackgroundWorker:
    """``triage serve``'s worker: a ``Worker`` in a child process, ``python -m triage.worker``,
    with the server's own ``Settings`` (sent down a pipe, so settings handed to ``create_app``
    count, not only the environment) and a lower CPU priority (``SERVE_WORKER_NICENESS``).

    In the API's process, its embedding and clustering held the GIL and one single POST waited
    seconds behind them (issue 14). The pipe is also how the child knows the server is gone:
    it stops when the pipe closes, on ``stop()`` or when the server dies, even by SIGKILL.
    Like ``triage worker``, it ends the round under way first; ``stop`` kills it after
    ``timeout`` seconds (an unfinished batch is rolled back and stays pending)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "triage.worker"], stdin=subprocess.PIPE
        )
        assert self.process.stdin is not None
        # One line of JSON, never a pickle; the secrets in clear (the pipe is the child's own).
        values = self.settings.model_dump(mode="json")
        for name, value in self.settings:
            if isinstance(value, SecretStr):
                values[name] = value.get_secret_value()
        line = json.dumps(values)
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(OSError):  # the child is gone already
            process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the worker did not stop within %g s; killing it", timeout)
            process.kill()
            process.wait()


def _run_child() -> None:
    """``BackgroundWorker``'s child: the settings from stdin, then work until stdin closes or
    SIGINT/SIGTERM arrives (Ctrl-C reaches the whole process group)."""
    # Stopped while it loads the models, there is nothing to finish.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    settings = Settings.model_validate_json(sys.stdin.buffer.readline())
    if hasattr(os, "nice"):  # not on Windows
        os.nice(SERVE_WORKER_NICENESS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = Worker(settings)
    # What the pipeline's import made lives as long as the process: out of the collector's way.
    gc.freeze()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: worker.stop())

    def stop_when_the_server_is_gone() -> None:
        sys.stdin.buffer.read()  # returns at end of file: the server closed the pipe, or died
        worker.stop()

    threading.Thread(target=stop_when_the_server_is_gone, name="parent-watch", daemon=True).start()
    worker.run_forever()


if __name__ == "__main__":
    # Through the package, so this runs the module everyone else imports, not a second copy.
    from triage.worker import _run_child as run_child

    run_child()
