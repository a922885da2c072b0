"""Two API processes behind one port on PostgreSQL: ``triage serve --workers 2 --no-worker``.

    TRIAGE_TEST_POSTGRES_URL=postgresql+psycopg://… .venv/bin/python -m bench.replicas

1. Single tickets at ``rate`` (400) requests/s for ``seconds``, open loop as in ``bench.load``
   (latency from each request's scheduled send), rate limiting off: p50 and p99, and the
   database then holds each accepted ticket exactly once.
2. The rate limit across both processes: the same server with ``TRIAGE_REDIS_URL`` set and one
   key limited to ``BURST`` requests at once (and 60 a minute after); ``rate`` requests/s for
   ``LIMIT_SECONDS`` with that key. Shared through Redis, about ``BURST`` (plus the refill) get
   202 and the rest 429; were the buckets per process, up to twice that would.

PostgreSQL only (SQLite serves one writer at a time, and several API processes on one file is
not the team deployment); skipped without ``TRIAGE_TEST_POSTGRES_URL`` or a Redis that answers
(``TRIAGE_TEST_REDIS_URL``, else redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, text

from bench.load import PG_URL, TRIAGE, databases, open_loop, serving, ticket

REDIS_URL = os.environ.get("TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BURST = 100
PER_MINUTE = 60
LIMIT_SECONDS = 2.0
SOURCE = "bench-replicas"


def _redis_ok() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _key(env: dict[str, str]) -> str:
    create = [TRIAGE, "keys", "create", "--scope", "ingest", "--name", "bench-replicas"]
    out = subprocess.run(create, env=env, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


async def _post(base: str, key: str, *, rate: float, seconds: float, tag: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        return await open_loop(
            session, rate=rate, seconds=seconds,
            body=lambda i: ticket(SOURCE, f"{tag}-{i}"),
        )  # fmt: skip


def run(*, seconds: float = 20, rate: float = 400, log: Any = print) -> dict[str, Any] | None:
    if not PG_URL or not _redis_ok():
        log("two API processes skipped: needs TRIAGE_TEST_POSTGRES_URL and a Redis")
        return None
    with (
        tempfile.TemporaryDirectory(prefix="triage-replicas-") as name,
        databases(Path(name), log) as found,
    ):
        folder = Path(name)
        urls = [url for label, url in found if label.startswith("PostgreSQL")]
        if not urls:
            return None
        env = {**os.environ, "TRIAGE_DATABASE_URL": urls[0], "TRIAGE_RATE_LIMIT_PER_MINUTE": "0"}
        subprocess.run([TRIAGE, "db", "upgrade"], env=env, check=True, capture_output=True)
        key = _key(env)
        log(f"two API processes: {seconds:g}s at {rate:g} single POSTs/s …")
        with serving(env, folder / "serve.log", extra=("--workers", "2")) as (base, _):
            single = asyncio.run(_post(base, key, rate=rate, seconds=seconds, tag="load"))
        limited = {
            **env,
            "TRIAGE_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "TRIAGE_RATE_LIMIT_BURST": str(BURST),
            "TRIAGE_REDIS_URL": REDIS_URL,
            "TRIAGE_REDIS_KEY_PREFIX": f"bench-replicas-{os.getpid()}:",
        }
        key = _key(limited)  # a new key: a full bucket
        with serving(limited, folder / "serve-limit.log", extra=("--workers", "2")) as (base, _):
            limit = asyncio.run(_post(base, key, rate=rate, seconds=LIMIT_SECONDS, tag="limit"))
        engine = create_engine(urls[0])
        query = "SELECT count(*), count(DISTINCT external_id) FROM feedback WHERE source = :s"
        with engine.connect() as connection:
            rows, distinct = connection.execute(text(query), {"s": SOURCE}).one()
        engine.dispose()
    accepted = limit["statuses"].get("202", 0)
    return {
        "seconds": seconds,
        "rate": rate,
        "single": single,
        "limit": {
            "burst": BURST,
            "per_minute": PER_MINUTE,
            "sent": limit["scheduled"],
            "accepted": accepted,
            "refused_429": limit["statuses"].get("429", 0),
            "allowed_at_most": BURST + int(PER_MINUTE * (limit["seconds"] + 1) / 60) + 1,
        },
        "stored": rows,
        "exactly_once": rows == distinct == single["ok"] + accepted,
    }


def table(result: dict[str, Any] | None) -> str:
    if result is None:
        return "Two API processes: not measured (needs PostgreSQL and Redis)."
    s, lim = result["single"], result["limit"]
    held = lim["accepted"] <= lim["allowed_at_most"]
    return "\n".join(
        [
            f"`triage serve --workers 2 --no-worker` on PostgreSQL, one port, rate limiting off: "
            f"{result['rate']:g} single POSTs/s for {result['seconds']:g}s, open loop.",
            "",
            "| offered rps | achieved rps | p50 ms | p99 ms | errors | 5xx |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {s['offered_rps']:g} | {s['achieved_rps']:.1f} | {s['p50_ms']:.1f} | "
            f"{s['p99_ms']:.1f} | {s['errors']} | {s['server_errors']} |",
            "",
            f"Rate limit through Redis, one key, burst {lim['burst']} and {lim['per_minute']} a "
            f"minute: {lim['sent']} POSTs at {result['rate']:g}/s gave {lim['accepted']} × 202 "
            f"and {lim['refused_429']} × 429 (at most {lim['allowed_at_most']} allowed: "
            f"{'held' if held else 'NOT held'} across both processes).",
            f"Stored: {result['stored']:,} tickets, "
            f"{'each exactly once' if result['exactly_once'] else 'NOT exactly once'}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=400)
    args = parser.parse_args(argv)
    result = run(seconds=args.seconds, rate=args.rate)
    print(table(result))
    return 0 if result is None or result["exactly_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
