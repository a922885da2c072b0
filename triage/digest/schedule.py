"""The weekly schedule: once a week's digest is due, the worker makes it in every format, writes
it to ``digest_dir`` and posts it to the webhook, signed; made once however many workers run,
and delivered at least once, marked delivered only after the receiver's 2xx."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from triage import db, store
from triage.config import Settings
from triage.digest.deliver import (
    deliver_webhook,
    delivery_id,
    delivery_lease,
    digest_link,
    webhook_host,
    webhook_payload,
    write_file,
)
from triage.digest.generate import FORMATS, generate
from triage.digest.values import as_moment
from triage.digest.weeks import due_at, last_complete_week
from triage.errors import DigestDeliveryError
from triage.integrations.slack import post_digest
from triage.models import Digest, as_utc, utcnow
from triage.store.exports import digest_posted

logger = logging.getLogger("triage.digest")


def schedule_enabled(settings: Settings) -> bool:
    """The worker keeps the schedule when the digest has somewhere to go: a webhook, Slack or a
    folder."""
    return bool(settings.digest_webhook_url or settings.digest_dir or settings.slack_webhook_url)


def maybe_generate_digest(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    client: httpx.Client | None = None,
) -> Digest | None:
    """One step of the schedule (``DigestSchedule`` runs it each worker round): once due, make
    the last complete week's digest in every format, write it to ``digest_dir`` and post it,
    signed, to the webhook until a receiver answers 2xx.

    Cheap when there is nothing to do (one small query). Several workers may call it: the
    digest is stored once, and only the worker holding the delivery's claim sends it. A failed
    delivery is released and tried again after ``digest_retry_minutes``; the claim of a worker
    that died while delivering runs out, and another worker sends it (at least once, with the
    same ``delivery_id``). Returns the HTML digest when this call made or delivered it.
    """
    return _run_slot(engine, settings, as_utc(now) if now else utcnow(), client).digest


@dataclass(frozen=True)
class _Slot:
    """What one step did: the digest it made or delivered, whether the slot is finished (made
    and, with a webhook, delivered or impossible to deliver from this process), and when a step
    could do more, if the schedule's usual pause is not right."""

    digest: Digest | None = None
    finished: bool = False
    retry_at: datetime | None = None


def _run_slot(
    engine: Engine, settings: Settings, now: datetime, client: httpx.Client | None
) -> _Slot:
    week = last_complete_week(now)
    if now < due_at(week, weekday=settings.digest_weekday, hour=settings.digest_hour):
        return _Slot()
    with db.session_scope(engine) as session:
        stored = store.get_digest(session, week=week, fmt="html")
    if stored is not None:
        webhook_done = stored.delivered_at is not None or not settings.digest_webhook_url
        if webhook_done and _slack_done(stored, settings):
            return _Slot(finished=True)
        busy_until = _busy_until(stored, settings)
        if busy_until is not None and now < busy_until:
            return _Slot(retry_at=busy_until)

    digests = {
        fmt: generate(engine, week=week, fmt=fmt, settings=settings, now=now) for fmt in FORMATS
    }
    digest = digests["html"]
    path = None
    if settings.digest_dir:
        for fmt_digest in digests.values():
            written = write_file(fmt_digest, settings.digest_dir)
            path = path or str(written)
    if stored is None:
        logger.info("digest %s generated%s", week, f" at {path}" if path else "")
    slack_done = _slack_done(digest, settings) or post_digest(
        engine, settings, digest, now, client=client
    )
    url = settings.digest_webhook_url
    if not url or digest.delivered_at is not None:
        return _Slot(digest, finished=slack_done)
    if settings.digest_webhook_secret is None:
        # Unsigned, a receiver cannot tell our digest from anyone's POST, and a Slack-style
        # receiver ignores the header anyway, so there is no reason to send one unsigned. The
        # slot counts as finished: this process cannot deliver it, and one error a week is
        # enough; a worker restarted with the secret delivers it.
        logger.error(
            "digest %s not posted to %s: set TRIAGE_DIGEST_WEBHOOK_SECRET (deliveries are "
            "signed; see the README's Digest webhook) and restart the worker to send it",
            week,
            webhook_host(url),
        )
        return _Slot(digest, finished=True)
    slot = _deliver(
        engine, settings, digest, url, settings.digest_webhook_secret, now, path, client
    )
    # A slot is finished only when Slack has it too; otherwise the next round posts it.
    return slot if slack_done else _Slot(slot.digest, retry_at=slot.retry_at)


def _slack_done(digest: Digest, settings: Settings) -> bool:
    return not settings.slack_webhook_url or digest_posted(digest, channel="slack")


def _busy_until(digest: Digest, settings: Settings) -> datetime | None:
    """Until when no worker should try the delivery: a failure's pause, or a live claim."""
    delivery = digest.summary.get("delivery") or {}
    failed_at = as_moment(delivery.get("failed_at"))
    pauses = [as_moment(delivery.get("claimed_until"))]
    if failed_at is not None:
        pauses.append(failed_at + timedelta(minutes=settings.digest_retry_minutes))
    return max((p for p in pauses if p is not None), default=None)


def _deliver(
    engine: Engine,
    settings: Settings,
    digest: Digest,
    url: str,
    secret: SecretStr,
    now: datetime,
    path: str | None,
    client: httpx.Client | None,
) -> _Slot:
    attempts = settings.digest_webhook_attempts
    backoff = settings.digest_webhook_backoff_seconds
    timeout = settings.digest_webhook_timeout_seconds
    claim = uuid.uuid4().hex
    with db.session_scope(engine, write_lock=True) as session:
        claimed = store.claim_digest_delivery(
            session,
            digest_id=digest.id,  # type: ignore[arg-type]
            claim=claim,
            at=now,
            until=now + delivery_lease(attempts=attempts, backoff=backoff, timeout=timeout),
        )
    if not claimed:
        return _Slot()
    key = delivery_id(digest)
    payload = webhook_payload(
        digest, delivery=key, link=digest_link(settings, digest.week), path=path
    )
    try:
        deliver_webhook(
            url,
            payload,
            secret=secret.get_secret_value(),
            delivery=key,
            attempts=attempts,
            backoff=backoff,
            timeout=timeout,
            client=client,
        )
    except Exception as e:
        # Any failure releases the claim at once rather than letting it run out, so the next
        # try comes after digest_retry_minutes; the failure is kept in the summary.
        error = e.message if isinstance(e, DigestDeliveryError) else type(e).__name__
        logger.warning("digest %s not delivered: %s", digest.week, error)
        with db.session_scope(engine, write_lock=True) as session:
            store.release_digest_delivery(
                session,
                digest_id=digest.id,  # type: ignore[arg-type]
                claim=claim,
                at=now,
                error=error,
            )
        if not isinstance(e, DigestDeliveryError):
            raise
        return _Slot()
    # Marked only now, after the 2xx: if this worker dies first, the claim runs out and the
    # digest is sent again with the same delivery_id, which the receiver drops.
    with db.session_scope(engine, write_lock=True) as session:
        store.release_digest_delivery(
            session,
            digest_id=digest.id,  # type: ignore[arg-type]
            claim=claim,
            at=now,
        )
    logger.info("digest %s delivered to %s as %s", digest.week, webhook_host(url), key)
    with db.session_scope(engine) as session:
        return _Slot(store.get_digest(session, week=digest.week, fmt="html"), finished=True)


class DigestSchedule:
    """The schedule as a worker keeps it, one ``run`` per worker round.

    A round costs nothing before the slot is due or once this process has seen the slot
    finished; otherwise one small query at most every ``digest_retry_minutes`` (the pause a
    failed delivery waits anyway, so a lasting failure is neither hammered nor logged each
    round), or as soon as another worker's claim on the delivery runs out.
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
        # Set before the step, so a step that raises waits its turn too.
        self._not_before = now + timedelta(minutes=self.settings.digest_retry_minutes)
        slot = _run_slot(self.engine, self.settings, now, self.client)
        if slot.retry_at is not None:
            self._not_before = slot.retry_at
        if slot.finished:
            self._finished = week
        return slot.digest
