"""Rate limits shared through Redis (issue 17): with ``TRIAGE_REDIS_URL`` every API process
takes from the same buckets, so a key's limit holds whatever process answers. Needs a Redis
(``TRIAGE_TEST_REDIS_URL``, else 127.0.0.1:6379); skips, saying so, without one. The limit across
real ``triage serve`` processes is tested in tests/reliability/test_scaling.py."""

from __future__ import annotations

import logging

import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from api.security import RateLimiter
from api.shared_limits import RedisRateLimiter, build_limiter
from tests.conftest import auth
from tests.support.servers import redis_or_skip, redis_prefix
from triage.models import Scope


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _pair(url: str, prefix: str, clock: Clock, **limits: int) -> list[RedisRateLimiter]:
    """Two limiters with their own Redis clients, as two API processes would have."""
    return [
        RedisRateLimiter(redis.Redis.from_url(url), name="key", prefix=prefix, clock=clock,
                         **limits)  # type: ignore[arg-type]
        for _ in range(2)
    ]  # fmt: skip


def test_shared_limit_one_bucket_for_two_processes() -> None:
    url = redis_or_skip()
    clock = Clock()
    with redis_prefix(url) as prefix:
        a, b = _pair(url, prefix, clock, per_minute=60, burst=3)
        assert [a.acquire(7), b.acquire(7), a.acquire(7)] == [0.0, 0.0, 0.0]
        assert b.acquire(7) == 1.0 and a.acquire(7) == 1.0  # the burst is spent, for both
        assert a.acquire(8) == 0.0  # another key has its own bucket
        clock.now += 0.5
        assert b.peek(7) == 0.5  # half a token back; peek takes nothing
        clock.now += 0.5
        assert b.peek(7) == 0.0 and b.peek(7) == 0.0
        assert a.acquire(7) == 0.0 and b.acquire(7) == 1.0
        # A full bucket is the same as none: the key expires once it would be full again.
        ttl = redis.Redis.from_url(url).pttl(f"{prefix}:ratelimit:key:7")
        assert 0 < ttl <= 4000


def test_shared_limit_peek_counts_only_failures() -> None:
    """The failed-authentication limiter looks before the lookup and takes only on failure."""
    url = redis_or_skip()
    with redis_prefix(url) as prefix:
        a, b = _pair(url, prefix, Clock(), per_minute=30, burst=2)
        assert a.peek("10.0.0.1") == 0.0
        assert redis.Redis.from_url(url).exists(f"{prefix}:ratelimit:key:10.0.0.1") == 0
        a.acquire("10.0.0.1")
        b.acquire("10.0.0.1")
        assert a.peek("10.0.0.1") == 2.0 and b.peek("10.0.0.1") == 2.0


def test_shared_limit_falls_back_to_this_process_when_redis_fails(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    nowhere = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(nowhere, name="key", per_minute=60, burst=2)
    assert [limiter.acquire(1), limiter.acquire(1)] == [0.0, 0.0]
    assert limiter.acquire(1) > 0  # still limited, by this process's own bucket
    assert caplog.text.count("rate limits: Redis failed") == 1  # once a minute, not per request


def test_shared_limit_is_chosen_by_the_setting(settings) -> None:  # type: ignore[no-untyped-def]
    local = build_limiter(settings, name="key", per_minute=60, burst=5)
    assert isinstance(local, RateLimiter)
    shared = settings.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:6379/0")})
    assert isinstance(build_limiter(shared, name="key", per_minute=60, burst=5), RedisRateLimiter)
    # Off is off, Redis or not.
    assert isinstance(build_limiter(shared, name="key", per_minute=0, burst=5), RateLimiter)


def test_shared_limit_two_apps_answer_429_from_one_bucket(settings, make_key) -> None:  # type: ignore[no-untyped-def]
    url = redis_or_skip()
    with redis_prefix(url) as prefix:
        shared = settings.model_copy(update={
            "redis_url": SecretStr(url), "redis_key_prefix": prefix,
            "rate_limit_per_minute": 1, "rate_limit_burst": 4,
        })  # fmt: skip
        key = auth(make_key(Scope.read))
        with TestClient(create_app(shared)) as one, TestClient(create_app(shared)) as two:
            codes = [(one, two)[i % 2].get("/v1/issues", headers=key).status_code
                     for i in range(8)]  # fmt: skip
            refused = two.get("/v1/issues", headers=key)
    # Each app alone would have let 4 through, 8 in all.
    assert codes == [200] * 4 + [429] * 4
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
