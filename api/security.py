"""Rate limiting per API key and of failed authentication per client address, and the security
headers every response carries.

The rate limiter is a token bucket per key id (or per address), in this process. Not a library:
slowapi and its ``limits`` backend key requests before the route runs (by client address, via a
decorator on every route), while our key is only known once ``deps.require`` has authenticated
it; thirty lines of bucket arithmetic under a lock do the job without a dependency. With several
API processes each keeps its own buckets, so a key's real limit is the per-process limit times
the number of processes, unless ``TRIAGE_REDIS_URL`` is set: then ``api.shared_limits`` keeps the
same buckets in Redis, shared by every process.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests a minute per key on average, up to ``burst`` at once.

    ``per_minute=0`` turns limiting off. ``clock`` is injectable so tests need no sleeping.
    """

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.capacity = float(max(burst, 1))
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()
        self._swept = 0.0

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def acquire(self, key_id: Hashable) -> float:
        """Take one token for ``key_id``: 0.0 when allowed, else seconds until one is free."""
        return self._take(key_id, take=True)

    def peek(self, key_id: Hashable) -> float:
        """Like ``acquire`` without taking the token: for counting only failures, checked
        before the work that may fail."""
        return self._take(key_id, take=False)

    def _take(self, key_id: Hashable, *, take: bool) -> float:
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key_id)
            if bucket is None:
                if not take:
                    return 0.0
                self._forget_full(now)
                bucket = self._buckets[key_id] = _Bucket(self.capacity, now)
            elapsed = max(now - bucket.updated, 0.0)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                if take:
                    bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # Keyed by client address, the buckets would grow with every address ever seen; one
        # that has refilled is the same as none. Swept at most once per refill period.
        if len(self._buckets) < 10_000 or now - self._swept < self.capacity / self.rate:
            return
        self._swept = now
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]


def retry_after_header(wait_seconds: float) -> str:
    # Retry-After takes whole seconds; rounding down would invite a retry that fails again.
    return str(max(1, math.ceil(wait_seconds)))


# --- security headers ---------------------------------------------------------------------------

# Pages the API renders (the digest) need nothing but their own inline CSS and SVG; anything else
# they tried to load, run or submit would be an injection, so the browser is told to refuse it.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

# /docs and /redoc are the only pages that run script: the Swagger UI and ReDoc bundles this app
# serves itself (api/docs.py), plus one inline bootstrap script that is allowed by its hash, never
# by 'unsafe-inline'. No other host: the docs work offline. They contain no customer data.
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_csp(body: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    # Swagger UI sets styles inline as it renders; ReDoc runs its search in a blob: worker.
    return (
        f"default-src 'none'; script-src 'self' {hashes}".rstrip()
        + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
        + "; connect-src 'self'; worker-src blob:"
    )


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every response; on every HTML response a content
    security policy that forbids scripts (the docs pages: only their pinned bundle).

    Set here, once, so a new route serving HTML cannot forget it.
    """

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str] = frozenset()) -> None:
        self.app, self.docs_paths = app, docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = HTML_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The docs pages are small and static: hold the body to hash its inline script.
        start: Message | None = None
        body = bytearray()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                assert start is not None
                headers = MutableHeaders(scope=start)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = docs_csp(bytes(body))
                await send(start)
                await send({"type": "http.response.body", "body": bytes(body)})
                return
            await send(message)

        await self.app(scope, receive, hold)
