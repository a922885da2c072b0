"""The weekly schedule: once a week's digest is due, the worker makes it in every format, writes
it to ``digest_dir`` and posts it to the webhook, each once however many workers run."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine

from triage import db, store
from triage.config import Settings
from triage.digest.deliver import (
    deliver_webhook,
    digest_link,
    webhook_host,
    webhook_payload,
    write_file,
)
from triage.digest.generate import FORMATS, generate
from triage.digest.values import as_moment
from triage.digest.weeks import due_at, last_complete_week
from triage.errors import DigestDeliveryError
from triage.models import Digest, as_utc, utcnow

logger = logging.getLogger("triage.digest")


def schedule_enabled(settings: Settings) -> bool:
    """The worker keeps the schedule when the digest has somewhere to go: a webhook or a folder."""
    return bool(settings.digest_webhook_url or settings.digest_dir)


def maybe_generate_digest(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    client: httpx.Client | None = None,
) -> Digest | None:
    """One step of the schedule (``DigestSchedule`` runs it each worker round): once due, make
    the last complete week's digest in every format, write it to ``digest_dir`` and send the
    webhook, each exactly once.

    Cheap when there is nothing to do (one small query). Several workers may call it: the
    digest is stored once, and only the worker that claims the delivery sends it. A failed
    delivery is released and tried again after ``digest_retry_minutes``. Returns the HTML
    digest when this call made or delivered it.
    """
    return _run_slot(engine, settings, as_utc(now) if now else utcnow(), client)[0]


def _run_slot(
    engine: Engine, settings: Settings, now: datetime, client: httpx.Client | None
) -> tuple[Digest | None, bool]:
    """``maybe_generate_digest``, also saying whether the slot is finished: its digest made and,
    with a webhook, delivered, so nothing is left for any worker to do until next week."""
    week = last_complete_week(now)
    if now < due_at(week, weekday=settings.digest_weekday, hour=settings.digest_hour):
        return None, False
    with db.session_scope(engine) as session:
        stored = store.get_digest(session, week=week, fmt="html")
    if stored is not None:
        if stored.delivered_at is not None or not settings.digest_webhook_url:
            return None, True
        failed_at = as_moment((stored.summary.get("delivery") or {}).get("failed_at"))
        if failed_at and now - failed_at < timedelta(minutes=settings.digest_retry_minutes):
            return None, False

    digests = {
        fmt: generate(engine, week=week, fmt=fmt, settings=settings, now=now) for fmt in FORMATS
    }
    digest = digests["html"]
    path = None
    if settings.digest_dir:
        for fmt_digest in digests.values():
            written = write_file(fmt_digest, settings.digest_dir)
            path = path or str(written)
    logger.info("digest %s generated%s", week, f" at {path}" if path else "")
    if not settings.digest_webhook_url:
        return digest, True

    with db.session_scope(engine, write_lock=True) as session:
        claimed = store.claim_digest_delivery(session, digest_id=digest.id, at=now)  # type: ignore[arg-type]
    if not claimed:
        return None, False
    payload = webhook_payload(digest, link=digest_link(settings, week), path=path)
    try:
        deliver_webhook(
            settings.digest_webhook_url,
            payload,
            attempts=settings.digest_webhook_attempts,
            backoff=settings.digest_webhook_backoff_seconds,
            timeout=settings.digest_webhook_timeout_seconds,
            client=client,
        )
    except Exception as e:
        # Any failure releases the claim: a claim kept would mark the digest delivered for good.
        error = e.message if isinstance(e, DigestDeliveryError) else type(e).__name__
        logger.warning("digest %s not delivered: %s", week, error)
        with db.session_scope(engine, write_lock=True) as session:
            store.release_digest_delivery(
                session,
                digest_id=digest.id,  # type: ignore[arg-type]
                failed_at=now,
                error=error,
            )
        if not isinstance(e, DigestDeliveryError):
            raise
        return None, False
    logger.info("digest %s delivered to %s", week, webhook_host(settings.digest_webhook_url))
    with db.session_scope(engine) as session:
        return store.get_digest(session, week=week, fmt="html"), True


class DigestSchedule:
    """The schedule as a worker keeps it, one ``run`` per worker round.

    A round costs nothing before the slot is due or once this process has seen the slot
    finished; otherwise one small query at most every ``digest_retry_minutes``, the pause a
    failed delivery waits anyway, so a lasting failure is neither hammered nor logged each round.
    """

    def __init__(
        self, engine: Engine, settings: Settings, *, client: httpx.Client | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.client = client
        self._finished: str | None = None
        self._not_before = datetime.min.replace(tzinfo=UTC)

    def run(self, now: datetime | None = None) -> Digest | None:
        """The HTML digest when this round made or delivered it; errors are the caller's."""
        now = as_utc(now) if now else utcnow()
        week = last_complete_week(now)
        due = due_at(week, weekday=self.settings.digest_weekday, hour=self.settings.digest_hour)
        if week == self._finished or now < max(due, self._not_before):
            return None
        self._not_before = now + timedelta(minutes=self.settings.digest_retry_minutes)
        digest, finished = _run_slot(self.engine, self.settings, now, self.client)
        if finished:
            self._finished = week
        return digest
