"""Delivering a digest: a signed JSON summary POSTed to a webhook with retries, and the file
the worker writes beside it. README, "Digest webhook", tells receivers how to verify it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from triage.config import Settings
from triage.digest.formatting import count
from triage.digest.values import as_number
from triage.errors import DigestDeliveryError
from triage.models import Digest, as_utc

logger = logging.getLogger("triage.digest")

SIGNATURE_HEADER = "X-Triage-Signature"
DELIVERY_HEADER = "X-Triage-Delivery"


def webhook_host(url: str) -> str:
    # Webhook URLs often carry their secret in the path; messages and logs name the host only.
    try:
        return urlsplit(url).hostname or "the webhook"
    except ValueError:  # a malformed IPv6 host: the message reports it as "the webhook"
        return "the webhook"


class _HideWebhookPaths(logging.Filter):
    """httpx logs each request's full URL at INFO, which ``triage worker`` shows; the line for a
    webhook URL keeps only its scheme and host, as a Slack-style URL's path is its secret."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls and isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.scheme}://{arg.host}/…"
                if isinstance(arg, httpx.URL) and str(arg) in self.urls
                else arg
                for arg in record.args
            )
        return True


_hidden = _HideWebhookPaths()
logging.getLogger("httpx").addFilter(_hidden)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Triage-Signature`` value in Stripe's scheme, an HMAC-SHA256 over
    ``"<t>.<body>"`` so a receiver can both check the sender and refuse an old capture."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def delivery_id(digest: Digest) -> str:
    """The idempotency key of a digest's delivery: its week and a hash of the stored row, so it
    is the same on every attempt and after any restart, and differs for another installation's
    digest of the same week or for one regenerated before it was delivered."""
    basis = f"{digest.week}|{digest.id}|{as_utc(digest.generated_at).isoformat()}"
    return f"{digest.week}-{hashlib.sha256(basis.encode()).hexdigest()[:16]}"


def delivery_lease(*, attempts: int, backoff: float, timeout: float) -> timedelta:
    """How long one worker holds a delivery: every attempt timing out while connecting and again
    while reading, plus every backoff. A claim older than this belongs to a dead worker."""
    return timedelta(seconds=attempts * 2 * timeout + backoff * (2 ** (attempts - 1) - 1))


def deliver_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    delivery: str,
    attempts: int = 5,
    backoff: float = 2.0,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> httpx.Response:
    """POST ``payload`` as JSON, signed with ``secret`` and tagged with the ``delivery`` id;
    retry network errors, 429 and 5xx, waiting ``backoff``, then twice as long each time. Any
    other answer outside 2xx fails at once.

    The body is serialised once and sent as those exact bytes, because the receiver checks the
    signature over the raw body. Each attempt is signed afresh: a retry minutes later must not
    look like a replay.
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    content = body.encode()
    host = webhook_host(url)
    own_client = client is None
    problem = ""
    try:
        _hidden.urls.add(str(httpx.URL(url)))
        client = client or httpx.Client(timeout=timeout)
        for attempt in range(1, attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(clock()), content),
                DELIVERY_HEADER: delivery,
            }
            try:
                response = client.post(url, content=content, headers=headers)
            except httpx.HTTPError as e:
                problem = _without_url(f"{type(e).__name__}: {e}", url)
            else:
                if 200 <= response.status_code < 300:
                    return response
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise DigestDeliveryError(
                        f"{host} refused the digest with HTTP {response.status_code}; "
                        "check TRIAGE_DIGEST_WEBHOOK_URL and TRIAGE_DIGEST_WEBHOOK_SECRET."
                    )
            logger.warning("digest webhook attempt %d/%d failed: %s", attempt, attempts, problem)
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    except DigestDeliveryError:
        raise
    except Exception as e:
        # Not a network error but a URL httpx cannot use (InvalidURL is no HTTPError). Its
        # message may quote the URL, so it is scrubbed and not chained: a chained traceback
        # would print the original message in the worker's log.
        raise DigestDeliveryError(
            f"Could not post the digest to {host}: "
            f"{_without_url(f'{type(e).__name__}: {e}', url)}; check TRIAGE_DIGEST_WEBHOOK_URL."
        ) from None
    finally:
        if own_client and client is not None:
            client.close()
    raise DigestDeliveryError(
        f"Could not deliver the digest to {host} after {attempts} attempts ({problem})."
    )


def _without_url(text: str, url: str) -> str:
    """``text`` with the webhook URL, its path and its query replaced by "…"."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    pieces = [url]
    if parts is not None:
        pieces += [parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query]
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) > 1:
            text = text.replace(piece, "…")
    return text


def webhook_payload(
    digest: Digest, *, delivery: str, link: str | None = None, path: str | None = None
) -> dict[str, Any]:
    """A JSON summary with where to read the digest; ``text`` pastes into chat as it is, and
    ``delivery_id`` (also the ``X-Triage-Delivery`` header) lets a receiver drop repeats."""
    headline = digest.summary.get("headline", {})

    def figure(name: str) -> Any:
        return (headline.get(name) or {}).get("this_week")

    text = (
        f"Feedback digest {digest.week}: {count(as_number(figure('feedback')))} feedback items, "
        f"{count(as_number(figure('new')))} new issues, {count(as_number(figure('growing')))} "
        f"growing, {count(as_number(figure('spiking')))} spiking, "
        f"{count(as_number(figure('regressed')))} regressed."
    )
    if link or path:
        text += f" {link or path}"
    return {
        "delivery_id": delivery,
        "text": text,
        "week": digest.week,
        "format": digest.format,
        "link": link,
        "path": path,
        "generated_at": as_utc(digest.generated_at).isoformat(),
        # Delivery states (the webhook's, Slack's) are bookkeeping, not the digest's numbers.
        "summary": {k: v for k, v in digest.summary.items() if k not in ("delivery", "slack")},
    }


def digest_link(settings: Settings, week: str, fmt: str = "html") -> str | None:
    if not settings.digest_base_url:
        return None
    return f"{settings.digest_base_url.rstrip('/')}/v1/digests/{week}?format={fmt}"


def write_file(digest: Digest, folder: str | Path) -> Path:
    path = Path(folder) / f"digest-{digest.week}.{digest.format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest.content, encoding="utf-8")
    return path
