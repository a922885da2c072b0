"""The weekly digest in Slack: a Block Kit message (headline figures, the top issues with links)
posted to an incoming webhook, within Slack's documented limits: 50 blocks a message, 150
characters in a header, 3,000 in a section's text, 10 fields of 2,000 each."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from triage.config import Settings
from triage.digest.formatting import count
from triage.digest.values import as_number
from triage.errors import DigestDeliveryError
from triage.models import Digest
from triage.redaction import RedactRecords

logger = logging.getLogger("triage.digest")

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
MAX_ISSUES = 15  # a chat message is a teaser; the digest link has the rest
TITLE_CHARS = 200

FIGURES = (
    ("feedback", "Feedback"),
    ("new", "New issues"),
    ("growing", "Growing"),
    ("spiking", "Spiking"),
    ("regressed", "Regressed"),
)


def escape(text: str) -> str:
    """Slack's three control characters: unescaped, "<!channel>" in a title would ping
    everyone and "<url|x>" would become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _link(url: str | None, label: str) -> str:
    if url and url.startswith(("https://", "http://")) and "|" not in url and ">" not in url:
        return f"<{url}|{label}>"
    return label


def slack_message(digest: Digest, *, link: str | None, redact: RedactRecords) -> dict[str, Any]:
    """The message for ``digest``: ``text`` is the notification's fallback, ``blocks`` what
    Slack shows. Titles pass ``redact``: a title a person typed is stored as typed."""
    summary = digest.summary
    headline = summary.get("headline") or {}
    fields, figures = [], []
    for name, label in FIGURES:
        figure = headline.get(name) or {}
        this_week, last_week = (
            as_number(figure.get("this_week")),
            as_number(figure.get("last_week")),
        )
        figures.append(f"{count(this_week)} {label.lower()}")
        before = f" (last week {count(last_week)})" if last_week is not None else ""
        fields.append({"type": "mrkdwn", "text": cut(f"*{label}*\n{count(this_week)}{before}",
                                                     FIELD_CHARS)})  # fmt: skip
    text = f"Feedback digest {digest.week}: " + ", ".join(figures) + "."
    header = {"type": "plain_text", "text": cut(f"Feedback digest {digest.week}", HEADER_CHARS)}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": header},
        {"type": "section", "fields": fields[:MAX_FIELDS]},
    ]
    top = [t for t in summary.get("top_issues") or [] if isinstance(t, dict)][:MAX_ISSUES]
    titles = redact([{"title": str(t.get("title") or "")} for t in top]) if top else []
    if top:
        heading = {"type": "mrkdwn", "text": "*Top issues*"}
        blocks += [{"type": "divider"}, {"type": "section", "text": heading}]
    for issue, shown in zip(top, titles, strict=True):
        title = escape(cut(str(shown["title"]) or "(untitled)", TITLE_CHARS))
        priority = as_number(issue.get("priority"))
        parts = [f"*#{issue.get('id')} {title}*", escape(str(issue.get("category") or "-"))]
        if priority is not None:
            parts.append(f"priority {priority:.2f}")
        parts.append(f"{count(as_number(issue.get('this_week')))} this week")
        if issue.get("ticket_url"):
            parts.append(_link(str(issue["ticket_url"]), "ticket"))
        line = " · ".join(parts)
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                    "text": cut(line, SECTION_CHARS)}})  # fmt: skip
    if link:
        footer = _link(link, "Read the whole digest")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


def post_to_slack(
    url: str, message: dict[str, Any], *, timeout: float, client: httpx.Client | None = None
) -> None:
    """One POST; Slack answers 200 "ok", or an error word such as "invalid_blocks" or
    "no_service" (a removed webhook). The schedule retries a failure on its next round."""
    from triage.digest.deliver import _hidden, webhook_host

    # The webhook URL's path is its secret: httpx's request log shows only the host.
    _hidden.urls.add(str(httpx.URL(url)))
    own = client is None
    client = client or httpx.Client(timeout=timeout)
    try:
        response = client.post(url, json=message)
    except httpx.HTTPError as e:
        raise DigestDeliveryError(
            f"Could not reach Slack at {webhook_host(url)} ({type(e).__name__})."
        ) from None
    finally:
        if own:
            client.close()
    if not response.is_success:
        raise DigestDeliveryError(
            f"Slack refused the digest with HTTP {response.status_code}: "
            f"{cut(response.text, 200)}; check TRIAGE_SLACK_WEBHOOK_URL."
        )


def post_digest(
    engine: Engine,
    settings: Settings,
    digest: Digest,
    now: datetime,
    *,
    client: httpx.Client | None = None,
) -> bool:
    """Post the scheduled ``digest`` to ``TRIAGE_SLACK_WEBHOOK_URL`` once, whichever worker gets
    there first; True when it is posted (now or before). A failure is logged and kept in the
    digest's summary, and tried again ``digest_retry_minutes`` later."""
    from triage import db
    from triage.digest.deliver import digest_link
    from triage.redaction import records_redactor
    from triage.store.exports import claim_digest_post, digest_posted, finish_digest_post

    hook = settings.slack_webhook_url
    if hook is None or digest_posted(digest, channel="slack"):
        return True  # nothing to post, or posted before
    timeout = settings.tracker_timeout_seconds
    with db.session_scope(engine, write_lock=True) as session:
        claimed = claim_digest_post(
            session, digest_id=digest.id, channel="slack", at=now,  # type: ignore[arg-type]
            until=now + timedelta(seconds=2 * timeout + 60),
            retry_after=timedelta(minutes=settings.digest_retry_minutes),
        )  # fmt: skip
    if not claimed:
        return False
    error = None
    try:
        message = slack_message(
            digest, link=digest_link(settings, digest.week), redact=records_redactor(settings)
        )
        post_to_slack(hook.get_secret_value(), message, timeout=timeout, client=client)
    except Exception as e:
        # Whatever went wrong, the claim is released and the failure kept, so a later round
        # tries again instead of waiting for the claim to run out.
        error = e.message if isinstance(e, DigestDeliveryError) else type(e).__name__
        logger.warning("digest %s not posted to Slack: %s", digest.week, error)
    with db.session_scope(engine, write_lock=True) as session:
        finish_digest_post(
            session,
            digest_id=digest.id,  # type: ignore[arg-type]
            channel="slack",
            at=now,
            error=error,
        )
    if error is None:
        logger.info("digest %s posted to Slack", digest.week)
    return error is None
