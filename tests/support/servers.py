"""Real processes for the scaling tests: Redis to share rate limits, and ``triage serve`` /
``triage worker`` started as a user starts them, each in its own process group so a test can end
it and every process it started (uvicorn's API processes) by the group's id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import httpx
import pytest

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> str:
    """``TRIAGE_TEST_REDIS_URL``, else the local Redis this machine kind runs; skips, saying
    why, when neither answers a PING."""
    import redis

    url = os.environ.get("TRIAGE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as e:
        pytest.skip(
            f"no Redis answers at {url} ({e}); start one (redis-server --port 6379) or set "
            "TRIAGE_TEST_REDIS_URL to test the rate limits shared through Redis"
        )
    return url


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of this test's own, so tests sharing a Redis never see each other's buckets;
    its keys are deleted afterwards."""
    import redis

    prefix = f"triage-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[Any]:
    """``triage ARGS`` in a new process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "triage.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_api(
    env: dict[str, str], log: IO[bytes], *extra: str
) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    process = start(["serve", "--port", str(port), "--no-worker", *extra], env, log)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(base_url: str, process: subprocess.Popen[Any], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{base_url}: the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url} did not become ready in {timeout:.0f} s")


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process's group (uvicorn stops its API processes), then SIGKILL whatever of
    the group is left."""
    group = process.pid  # start_new_session: the group's id is the leader's pid
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(10)
