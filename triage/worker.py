"""The worker: picks up pending tickets, processes them, refreshes the issues now and then, and
keeps the weekly digest's schedule.

Run it as ``triage worker`` (one or more processes; on PostgreSQL they share the queue through
``FOR UPDATE SKIP LOCKED``) or inside ``triage serve`` as a background thread.
"""

from __future__ import annotations

import logging
import threading
import time

from triage import db
from triage.config import Settings
from triage.digest import DigestSchedule, schedule_enabled
from triage.pipeline import Pipeline

logger = logging.getLogger("triage.worker")


class Worker:
    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline or Pipeline(settings)
        self.engine = db.get_engine(settings.database_url)
        self._stop = threading.Event()
        # Refresh once on start: a worker killed after its last batch but before refreshing
        # leaves processed units that no issue has seen, and nothing pending to mark it dirty.
        self._dirty = True
        self._last_refresh = 0.0
        self.digests = DigestSchedule(self.engine, settings) if schedule_enabled(settings) else None

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> int:
        """One round: process what is pending, refresh issues when due, and once caught up make
        and send the weekly digest when it is due. Returns tickets done."""
        stats = self.pipeline.process_pending(self.engine)
        done = stats.processed + stats.failed
        self._dirty = self._dirty or stats.processed > 0
        due = time.monotonic() - self._last_refresh >= self.settings.worker_refresh_seconds
        if self._dirty and (due or done == 0):
            self.pipeline.refresh(self.engine)
            self._dirty = False
            self._last_refresh = time.monotonic()
        if done:
            logger.info("processed %d, failed %d", stats.processed, stats.failed)
        else:
            # Only with the queue empty, so the issues were just refreshed: a digest is stored for
            # good, and one made during a backlog would miss that week's late tickets forever.
            self._run_digest_schedule()
        return done

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
    """A ``Worker`` on a daemon thread, for ``triage serve``."""

    def __init__(self, settings: Settings) -> None:
        self.worker = Worker(settings)
        self.thread = threading.Thread(target=self.worker.run_forever, name="triage-worker")
        self.thread.daemon = True

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)
