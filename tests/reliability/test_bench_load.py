"""bench/load.py's load generator against a stub server on loopback: counts, never timings."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

web = pytest.importorskip("aiohttp.web", reason="bench/load.py needs the bench extra (aiohttp)")

from bench import load  # noqa: E402


async def _with_stub(
    handle: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]],
    drive: Callable[[Any], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Serve ``handle`` on a free loopback port and run ``drive(session)`` against it."""
    import aiohttp

    async def feedback(request: web.Request) -> web.Response:
        status, body = handle(await request.json())
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/v1/feedback", feedback)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            return await drive(session)
    finally:
        await runner.cleanup()


def test_load_schedule_spaces_requests_evenly_from_zero() -> None:
    times = load.schedule(200, 20)
    assert len(times) == 4000
    assert times[0] == 0
    assert times[-1] == pytest.approx(19.995)
    assert all(b - a == pytest.approx(0.005) for a, b in itertools.pairwise(times))


def test_load_open_loop_sends_each_scheduled_request_once_and_counts_errors() -> None:
    seen: Counter[str] = Counter()

    def handle(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        seen[body["external_id"]] += 1
        number = int(body["external_id"][1:])
        return (202, {"id": number + 1}) if number % 2 == 0 else (503, {"error": {}})

    result = asyncio.run(
        _with_stub(
            handle,
            lambda session: load.open_loop(
                session, rate=100, seconds=0.2, body=lambda i: load.ticket("t", f"s{i}")
            ),
        )
    )
    assert result["scheduled"] == 20
    assert (result["ok"], result["errors"]) == (10, 10)
    assert seen == Counter(f"s{i}" for i in range(20))


def test_load_batch_ingest_counts_new_tickets_and_duplicates_apart() -> None:
    ids = itertools.count(1)
    seen: Counter[str] = Counter()

    def handle(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        items = []
        for item in body["items"]:
            seen[item["external_id"]] += 1
            duplicate = item["external_id"].endswith("7")  # as if stored before
            result = "duplicate" if duplicate else "stored"
            items.append({"id": 0 if duplicate else next(ids), "result": result})
        return 202, {"items": items}

    result = asyncio.run(
        _with_stub(
            handle,
            lambda session: load.batch_ingest(session, clients=2, batch=10, seconds=0.1),
        )
    )
    sent = result["requests"] * 10
    assert sum(seen.values()) == sent and max(seen.values()) == 1  # every external_id unique
    assert result["errors"] == 0 and result["rejected"] == 0
    assert result["accepted"] + result["duplicates"] == sent
    assert result["distinct_ids"] == result["accepted"]
    assert result["duplicates"] == sum(1 for e in seen if e.endswith("7"))
