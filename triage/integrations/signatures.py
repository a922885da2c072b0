"""Checking that a webhook came from the tool it claims to, over the raw body as received.

Each vendor signs differently; every check compares with ``hmac.compare_digest`` so the time it
takes says nothing about how much of a guess was right, and raises ``SignatureError`` (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime

from triage.errors import SignatureError

# The generic webhook uses the scheme the digest webhook signs with (triage.digest.deliver.sign).
TRIAGE_SIGNATURE_HEADER = "X-Triage-Signature"
ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INTERCOM_SIGNATURE_HEADER = "X-Hub-Signature"


def _check_fresh(signed_at: float, *, now: float, max_age: float) -> None:
    # Both directions: a timestamp far in the future is a capture that would stay valid longer.
    if abs(now - signed_at) > max_age:
        raise SignatureError(
            f"The signature's timestamp is more than {max_age:.0f} seconds from this server's "
            "clock; a replayed request, or a clock that is off. Nothing was stored."
        )


def verify_zendesk(
    *,
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    max_age: float,
    now: float | None = None,
) -> None:
    """Zendesk: base64(HMAC-SHA256(secret, timestamp + body)), the timestamp in ISO 8601."""
    if not signature or not timestamp:
        raise SignatureError(
            f"Missing {ZENDESK_SIGNATURE_HEADER} or {ZENDESK_TIMESTAMP_HEADER}; this endpoint "
            "only takes webhooks that Zendesk signed."
        )
    try:
        signed_at = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError as e:
        raise SignatureError(f"{ZENDESK_TIMESTAMP_HEADER} is not an ISO 8601 time.") from e
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureError(
            "The Zendesk signature does not match: the webhook's signing secret (Admin Center, "
            "Webhooks, the webhook, Signing secret) must equal TRIAGE_ZENDESK_WEBHOOK_SECRET."
        )
    _check_fresh(signed_at, now=time.time() if now is None else now, max_age=max_age)


def verify_intercom(*, secret: str, body: bytes, signature: str | None) -> None:
    """Intercom: ``sha1=`` + hex HMAC-SHA1(client secret, body).

    Intercom signs no timestamp, so a capture cannot be told from a retry; a replay stores
    nothing new, as ingestion is idempotent per (source, external_id).
    """
    if not signature:
        raise SignatureError(
            f"Missing {INTERCOM_SIGNATURE_HEADER}; this endpoint only takes webhooks that "
            "Intercom signed."
        )
    expected = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureError(
            "The Intercom signature does not match: TRIAGE_INTERCOM_CLIENT_SECRET must be the "
            "client secret of the app whose webhooks point here (Developer Hub, Basic info)."
        )


def verify_triage(
    *,
    secret: str,
    body: bytes,
    signature: str | None,
    max_age: float,
    now: float | None = None,
) -> None:
    """The generic webhook: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    parts = dict(part.split("=", 1) for part in (signature or "").split(",") if "=" in part)
    timestamp, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or not given:
        raise SignatureError(
            f"Send {TRIAGE_SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of "
            "'<t>.<body>' with TRIAGE_INGEST_WEBHOOK_SECRET> (README, Generic signed webhook)."
        )
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    if not hmac.compare_digest(mac.hexdigest(), given.strip()):
        raise SignatureError("The signature does not match TRIAGE_INGEST_WEBHOOK_SECRET.")
    _check_fresh(int(timestamp), now=time.time() if now is None else now, max_age=max_age)
