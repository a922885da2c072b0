"""Delivering a digest: a JSON summary POSTed to a webhook with retries, and the file the
worker writes beside it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


def webhook_host(url: str) -> str:
    # Webhook URLs often carry their secret in the path; messages and logs name the host only.
    return urlsplit(url).hostname or "the webhook"


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


def deliver_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST ``payload`` as JSON; retry network errors, 429 and 5xx, waiting ``backoff``,
    then twice as long each time. Any other answer outside 2xx fails at once."""
    _hidden.urls.add(str(httpx.URL(url)))
    own_client = client is None
    client = client or httpx.Client(timeout=timeout)
    problem = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload)
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if 200 <= response.status_code < 300:
                    return response
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise DigestDeliveryError(
                        f"{webhook_host(url)} refused the digest with HTTP {response.status_code}; "
                        "check TRIAGE_DIGEST_WEBHOOK_URL."
                    )
            logger.warning("digest webhook attempt %d/%d failed: %s", attempt, attempts, problem)
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    finally:
        if own_client:
            client.close()
    raise DigestDeliveryError(
        f"Could not deliver the digest to {webhook_host(url)} after {attempts} attempts "
        f"({problem})."
    )


def webhook_payload(
    digest: Digest, *, link: str | None = None, path: str | None = None
) -> dict[str, Any]:
    """A JSON summary with where to read the digest; ``text`` pastes into chat as it is."""
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
        "text": text,
        "week": digest.week,
        "format": digest.format,
        "link": link,
        "path": path,
        "generated_at": as_utc(digest.generated_at).isoformat(),  # type: ignore[union-attr]
        "summary": {k: v for k, v in digest.summary.items() if k != "delivery"},
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
