"""Many processes (issue 17): real ``triage serve`` and ``triage worker`` processes against one
database. Tickets posted to two API processes are each processed exactly once by two workers; a
held refresh lock makes both workers skip their refreshes, say so, and keep processing; the rate
limit holds across API processes when Redis shares it (and is per process without it).

Counts only, never timings. Every process is started in its own group and ended by its id.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from tests.conftest import auth
from tests.support.reliability import note
from tests.support.servers import redis_or_skip, redis_prefix, start, start_api, stop, wait_ready
from triage import db, store
from triage.models import Feedback, Issue, PipelineRun, Scope, Unit

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

TOPICS = [
    "The export button on the report screen does nothing when I click it.",
    "Forecast numbers for last month do not match our sales ledger.",
    "Reply drafts for our Spanish customers come out in German.",
    "The summary left out the refund we discussed on the call.",
]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "TRIAGE_DATABASE_URL": database_url,
        "TRIAGE_EMBEDDING_BACKEND": "fake",
        "TRIAGE_WORKER_BATCH_SIZE": "25",
        "TRIAGE_WORKER_POLL_SECONDS": "0.2",
        "TRIAGE_WORKER_REFRESH_SECONDS": "2",
        **extra,
    }


def _key(engine, scope: Scope) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        _, secret = store.create_api_key(session, scope=scope, name=f"scaling-{scope.value}")
    return auth(secret)


def _wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _count(engine, statement: Any) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return int(session.exec(statement).one())


def _ticket(i: int) -> dict[str, Any]:
    return {"source": "scale", "external_id": f"S-{i}", "text": f"{TOPICS[i % 4]} Ticket {i}.",
            "customer_id": f"c{i % 11}"}  # fmt: skip


@POSTGRES_ONLY
def test_scaling_two_apis_two_workers_process_each_ticket_once(  # type: ignore[no-untyped-def]
    database_url, settings, engine, tmp_path, record_property
):
    batches, per_batch, singles = 8, 50, 10
    total = batches * per_batch + singles
    url = make_url(settings.database_url)
    names = ("scale-worker-a", "scale-worker-b")
    ingest = _key(engine, Scope.ingest)
    logs = {name: open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
            for name in ("api-a", "api-b", *names)}  # fmt: skip
    processes = []
    # Held by the test from before the workers start: "another worker is refreshing" the whole
    # time tickets arrive. Both must skip their refreshes and process all the same.
    lock = store.refresh_lock(engine)
    assert lock.__enter__()
    released = False
    try:
        api_a, base_a = start_api(_env(settings.database_url), logs["api-a"])
        api_b, base_b = start_api(_env(settings.database_url), logs["api-b"])
        processes += [api_a, api_b]
        for name in names:
            # Each names itself to PostgreSQL, so the test sees both connected before work
            # arrives, and both claim from the same queue.
            named = url.update_query_dict({"application_name": name})
            processes.append(start(["worker"], _env(named.render_as_string(hide_password=False)),
                                   logs[name]))  # fmt: skip
        wait_ready(base_a, api_a)
        wait_ready(base_b, api_b)

        def connected() -> set[str]:
            with db.session_scope(engine) as session:
                rows = session.execute(text("SELECT application_name FROM pg_stat_activity"))
                return set(rows.scalars()) & set(names)

        _wait_until(lambda: connected() == set(names), 240, "both workers connected")

        answers: Counter[str] = Counter()
        with httpx.Client(timeout=60) as http:
            for b in range(batches):
                base = (base_a, base_b)[b % 2]
                items = [_ticket(b * per_batch + i) for i in range(per_batch)]
                response = http.post(f"{base}/v1/feedback", json={"items": items}, headers=ingest)
                assert response.status_code == 202, response.text
                answers.update(item["result"] for item in response.json()["items"])
            # A client retrying a batch through the other API process: duplicates, nothing new.
            retry = [_ticket(i) for i in range(per_batch)]
            response = http.post(f"{base_b}/v1/feedback", json={"items": retry}, headers=ingest)
            answers.update(item["result"] for item in response.json()["items"])
            for i in range(batches * per_batch, total):
                base = (base_a, base_b)[i % 2]
                response = http.post(f"{base}/v1/feedback", json=_ticket(i), headers=ingest)
                assert response.status_code == 202, response.text
                answers["duplicate" if response.json()["duplicate"] else "stored"] += 1
        assert answers == {"stored": total, "duplicate": per_batch}

        pending = select(func.count()).select_from(Feedback).where(Feedback.status == "pending")
        _wait_until(lambda: _count(engine, pending) == 0, 600, "every ticket processed")
        refreshes = (select(func.count()).select_from(PipelineRun)
                     .where(col(PipelineRun.kind).in_(["refresh", "recluster"])))  # fmt: skip
        # All processed while the lock was held: no refresh ran, and both workers said so.
        assert _count(engine, refreshes) == 0

        def said(name: str) -> str:
            return (tmp_path / f"{name}.log").read_text(errors="replace")

        _wait_until(lambda: all("refresh skipped" in said(n) for n in names), 120,
                    "both workers logging their skipped refresh")  # fmt: skip

        lock.__exit__(None, None, None)
        released = True
        _wait_until(lambda: _count(engine, refreshes) >= 1, 400, "a refresh once released")

        def processed_per_worker() -> dict[str, int]:
            return {name: sum(int(n) for n in re.findall(r"processed (\d+), failed", said(name)))
                    for name in names}  # fmt: skip

        _wait_until(lambda: sum(processed_per_worker().values()) >= total, 120, "the logs")
    finally:
        if not released:
            lock.__exit__(None, None, None)
        for process in processes:
            stop(process)
        for log in logs.values():
            log.close()

    done = processed_per_worker()
    output = {name: said(name) for name in names}
    with db.session_scope(engine) as session:
        attempts = Counter(session.exec(select(Feedback.attempts)).all())
        statuses = Counter(session.exec(select(Feedback.status)).all())
        units = session.exec(select(Unit.feedback_id, Unit.position)).all()
        issues = session.exec(select(func.count()).select_from(Issue)).one()
    note(record_property, fault="two API processes and two workers on one PostgreSQL; the "
         "refresh lock held elsewhere while tickets arrive",
         tried=f"{total} tickets over both APIs (+{per_batch} retried through the other); "
               f"processed per worker: {done}",
         checked="each ticket stored once and processed once (attempts 1); both workers "
                 "skipped their refresh and said so, kept processing, and refreshed once the "
                 "lock was free; no worker round failed")  # fmt: skip
    assert statuses == {"processed": total}, statuses
    assert attempts == {1: total}, attempts
    assert len(units) == len(set(units))
    assert sum(done.values()) == total, done
    assert issues > 0
    assert all("worker round failed" not in log for log in output.values())


def _statuses(bases: list[str], headers: dict[str, str], n: int) -> dict[str, list[int]]:
    codes: dict[str, list[int]] = {base: [] for base in bases}
    with httpx.Client(timeout=30) as http:
        for i in range(n):
            base = bases[i % len(bases)]
            codes[base].append(http.get(f"{base}/v1/issues?limit=1", headers=headers).status_code)
    return codes


@POSTGRES_ONLY
def test_scaling_rate_limit_holds_across_two_api_processes_with_redis(  # type: ignore[no-untyped-def]
    database_url, settings, engine, tmp_path, record_property
):
    redis_url = redis_or_skip()
    burst, sent = 5, 16
    # 1 a minute: no token comes back while the test runs.
    limits = {"TRIAGE_RATE_LIMIT_PER_MINUTE": "1", "TRIAGE_RATE_LIMIT_BURST": str(burst)}
    read = _key(engine, Scope.read)
    results = {}
    with redis_prefix(redis_url) as prefix:
        shared = _env(settings.database_url, TRIAGE_REDIS_URL=redis_url,
                      TRIAGE_REDIS_KEY_PREFIX=prefix, **limits)  # fmt: skip
        for label, env in (("redis", shared), ("per process", _env(settings.database_url,
                                                                    **limits))):  # fmt: skip
            processes = []
            try:
                with open(tmp_path / f"{label}.log", "wb") as log:
                    processes = [start_api(env, log) for _ in range(2)]
                    for process, base in processes:
                        wait_ready(base, process)
                    results[label] = _statuses([base for _, base in processes], read, sent)
            finally:
                for process, _ in processes:
                    stop(process)
            read = _key(engine, Scope.read)  # a fresh key for the next pair
    allowed = {label: sum(c == 200 for codes in by_api.values() for c in codes)
               for label, by_api in results.items()}  # fmt: skip
    note(record_property, fault="one key over its rate limit through two API processes",
         tried=f"{sent} requests alternating between the two; burst {burst}, 1 a minute",
         checked=f"with Redis {allowed['redis']} let through (the burst), the rest 429 from "
                 f"both processes; without it {allowed['per process']} (the burst per "
                 "process)")  # fmt: skip
    assert allowed["redis"] == burst
    assert all(429 in codes for codes in results["redis"].values())
    assert allowed["per process"] == 2 * burst


def _spawned_children(pid: int) -> int:
    """uvicorn's API processes under ``pid`` (multiprocessing spawn children)."""
    from pathlib import Path

    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum("spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace")
               for child in children)  # fmt: skip


def test_scaling_serve_workers_shares_one_port_and_runs_one_worker(  # type: ignore[no-untyped-def]
    database_url, settings, engine, tmp_path, record_property
):
    """``triage serve --workers 2``: two API processes behind one port, the worker once, in the
    supervising process; with Redis the key's limit holds behind the port."""
    redis_url = redis_or_skip()
    burst = 6
    ingest, read = _key(engine, Scope.ingest), _key(engine, Scope.read)
    from tests.support.servers import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with redis_prefix(redis_url) as prefix, open(tmp_path / "serve.log", "wb") as log:
        env = _env(settings.database_url, TRIAGE_REDIS_URL=redis_url,
                   TRIAGE_REDIS_KEY_PREFIX=prefix, TRIAGE_RATE_LIMIT_PER_MINUTE="1",
                   TRIAGE_RATE_LIMIT_BURST=str(burst))  # fmt: skip
        process = start(["serve", "--port", str(port), "--workers", "2"], env, log)
        try:
            wait_ready(base, process)
            _wait_until(lambda: _spawned_children(process.pid) == 2, 60, "two API processes")
            response = httpx.post(f"{base}/v1/feedback", json=_ticket(1), headers=ingest)
            assert response.status_code == 202, response.text
            processed = (
                select(func.count()).select_from(Feedback).where(Feedback.status == "processed")
            )
            _wait_until(lambda: _count(engine, processed) == 1, 300, "the ticket processed")
            codes = _statuses([base], read, 2 * burst)[base]
        finally:
            stop(process)
    note(record_property, fault="`triage serve --workers 2` with Redis: one port, two API "
         "processes", tried=f"{2 * burst} requests with one key (burst {burst}) and one ticket",
         checked="two API processes; the ticket processed by the one in-process worker; the "
                 "burst let through, the rest 429")  # fmt: skip
    assert codes == [200] * burst + [429] * burst
