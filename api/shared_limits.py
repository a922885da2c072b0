"""Rate limits that hold across every API process: the token buckets of ``api.security``, kept
in Redis when ``TRIAGE_REDIS_URL`` is set.

``triage serve --workers N`` (or N machines) with in-process buckets lets a key make N times its
limit. With Redis, each bucket is one hash (tokens, last update) that a Lua script reads, refills
and takes from in one atomic step, on Redis's own clock, so processes on machines whose clocks
differ still share one bucket. A bucket that has refilled is the same as none, so each key
expires once it would be full again.

While Redis cannot be reached, every process falls back to its own in-process buckets (the limit
is then per process again) and logs a warning at most once a minute: the API keeps answering, and
no request is let through unlimited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any, Protocol

from api.security import RateLimiter
from triage.config import Settings

logger = logging.getLogger("triage.api")

# KEYS[1]: the bucket. ARGV: tokens a second, capacity, 1 to take a token (0 to look), and the
# time in seconds ("" for Redis's clock). Returns the seconds to wait, as a string: Redis turns a
# Lua number into an integer.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(bucket[1])
local updated = tonumber(bucket[2])
if tokens == nil then
  if not take then return '0' end
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(now - updated, 0) * rate)
local wait = 0
if tokens >= 1 then
  if not take then return '0' end
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
if take then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
end
return tostring(wait)
"""


class Limiter(Protocol):
    """What ``api.deps.require`` uses of a limiter: ``RateLimiter``'s interface."""

    per_minute: int

    @property
    def enabled(self) -> bool: ...

    def acquire(self, key_id: Hashable) -> float: ...

    def peek(self, key_id: Hashable) -> float: ...


class RedisRateLimiter:
    """``RateLimiter`` with its buckets in Redis, shared by every process that uses the same
    Redis and ``name``: ``per_minute`` requests a minute per key on average, ``burst`` at once.

    ``clock`` is for tests (seconds; Redis's clock when None). ``fallback`` takes over while Redis
    fails.
    """

    def __init__(
        self,
        client: Any,
        *,
        name: str,
        per_minute: int,
        burst: int,
        prefix: str = "triage",
        clock: Callable[[], float] | None = None,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.capacity = float(max(burst, 1))
        self.rate = per_minute / 60.0
        self.clock = clock
        self.key_prefix = f"{prefix}:ratelimit:{name}:"
        self.fallback = fallback or RateLimiter(per_minute, burst)
        self._script = client.register_script(TOKEN_BUCKET)
        self._warned = -float("inf")
        self._warn_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def acquire(self, key_id: Hashable) -> float:
        """Take one token for ``key_id``: 0.0 when allowed, else seconds until one is free."""
        return self._take(key_id, take=True)

    def peek(self, key_id: Hashable) -> float:
        """Like ``acquire`` without taking the token."""
        return self._take(key_id, take=False)

    def _take(self, key_id: Hashable, *, take: bool) -> float:
        if not self.enabled:
            return 0.0
        now = "" if self.clock is None else repr(self.clock())
        args = [repr(self.rate), repr(self.capacity), "1" if take else "0", now]
        try:
            return float(self._script(keys=[f"{self.key_prefix}{key_id}"], args=args))
        except Exception as e:  # redis.RedisError, or a connection refused before it
            self._warn(e)
            return self.fallback.acquire(key_id) if take else self.fallback.peek(key_id)

    def _warn(self, error: Exception) -> None:
        with self._warn_lock:
            if time.monotonic() - self._warned < 60:
                return
            self._warned = time.monotonic()
        logger.warning(
            "rate limits: Redis failed (%s: %s); this process counts on its own until it is back",
            type(error).__name__,
            error,
        )


@lru_cache(maxsize=4)
def _client(url: str) -> Any:
    import redis

    # Short timeouts: a stalled Redis must cost a request milliseconds, not its whole budget.
    return redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


def build_limiter(settings: Settings, *, name: str, per_minute: int, burst: int) -> Limiter:
    """Redis-backed when ``TRIAGE_REDIS_URL`` is set, else this process's own buckets."""
    if settings.redis_url is None or per_minute <= 0:
        return RateLimiter(per_minute, burst)
    return RedisRateLimiter(
        _client(settings.redis_url.get_secret_value()),
        name=name,
        per_minute=per_minute,
        burst=burst,
        prefix=settings.redis_key_prefix,
    )
