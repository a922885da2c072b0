"""Ingestion under load: a real ``triage serve`` on loopback, driven from this process.

    .venv/bin/python -m bench.load                # SQLite, and PostgreSQL when
                                                  # TRIAGE_TEST_POSTGRES_URL is set
    .venv/bin/python -m bench.load --seconds 5    # quicker

``run(...)`` returns the figures as a dict for ``make bench``; ``table(...)`` renders them.

Each database is new: a SQLite file in a temporary folder, and on the server of
``TRIAGE_TEST_POSTGRES_URL`` a database ``triage_load_<pid>``, dropped afterwards (as
tests/conftest.py does). Untimed: ``triage db upgrade``, ``triage keys create --scope ingest``,
then ``triage serve --no-worker`` (ingestion only; processing is the worker's job) with
``TRIAGE_RATE_LIMIT_PER_MINUTE=0``: the per-key limiter (600 a minute by default) would
otherwise be what gets measured.

1. Batch ingestion: ``clients`` concurrent clients post ``{"items": [...]}`` batches of ``batch``
   new tickets (every external_id unique) for ``seconds``; tickets/s = accepted / elapsed. The
   database must then hold exactly the accepted tickets: none lost, none twice.
2. Single tickets, open loop: one ``POST /v1/feedback`` scheduled every 1/``rate`` s for
   ``seconds``, each sent from its own task and timed from its scheduled time, so a server stall
   delays no later request and shows in the percentiles (no coordinated omission).
3. Mixed: a second new database served by ``triage serve`` *with* its worker. ``MIXED_SEED``
   tickets go in first; once the worker has processed them and refreshed the issues, for
   ``seconds``: single tickets arrive as in step 2, ``readers`` clients read issues and tickets
   in a loop, and the worker processes what arrives and refreshes the issues every
   ``MIXED_REFRESH_SECONDS``. Every answer is counted by status: a 5xx there is a bug (a busy
   server answers 503 with Retry-After, counted apart).

Why not locust or wrk: locust 2.47 installs from PyPI, but importing it monkey-patches the whole
process with gevent (this runs inside ``make bench``, next to torch and onnxruntime), and its
``constant_throughput`` users are closed loops: a slow answer delays that user's next request
and latency is timed from the actual send, which hides stalls. Debian's wrk is closed-loop too
(wrk2, which fixes that, is not packaged) and is not installable from the project's files.
Why aiohttp and not httpx (already a dependency): on this 2-core machine the generator shares
the CPU with the server, and httpx's AsyncClient spent 1.3 to 4 ms of CPU per request against
0.3 to 0.5 ms for aiohttp's, enough to make the client the bottleneck at 200 requests/s. The
CPU seconds of server and client are reported with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

TRIAGE = str(Path(sys.executable).parent / "triage")
PG_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
BATCH_SOURCE, SINGLE_SOURCE, MIXED_SOURCE = "load-batch", "load-single", "load-mixed"
MIXED_REFRESH_SECONDS = 5
MIXED_SEED = 500
READ_PATHS = ("/v1/issues?limit=20", "/v1/feedback?limit=20")
FAILED = (aiohttp.ClientError, TimeoutError)


def ticket(source: str, external_id: str) -> dict[str, Any]:
    n = sum(map(ord, external_id))
    return {
        "source": source,
        "external_id": external_id,
        "text": f"Ticket {external_id}: the meeting summary left out the action items again, "
        "and the export to PDF cut off the last table. Please fix this before Friday.",
        "customer_id": f"customer-{n % 50}",
        "customer_value": 1000 + n % 9000,
        "output_id": f"out-{external_id}",
        "created_at": "2026-11-20T09:12:00Z",
        "metadata": {"plan": "pro", "bench": "load"},
    }


def schedule(rate: float, seconds: float) -> list[float]:
    """Send times of the open loop, in seconds from its start: one every 1/rate s."""
    return [i / rate for i in range(round(rate * seconds))]


async def batch_ingest(
    session: aiohttp.ClientSession, *, clients: int, batch: int, seconds: float
) -> dict[str, Any]:
    numbers, ids = itertools.count(), []
    counts = {"requests": 0, "errors": 0, "duplicates": 0, "rejected": 0}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            items = [ticket(BATCH_SOURCE, f"b{next(numbers)}") for _ in range(batch)]
            counts["requests"] += 1
            try:
                async with session.post("/v1/feedback", json={"items": items}) as response:
                    answers = (await response.json())["items"] if response.status == 202 else None
            except FAILED:
                answers = None
            if answers is None:
                counts["errors"] += 1
                continue
            # Each item has its own result; a conflict or invalid one stored nothing.
            results = [a["result"] for a in answers]
            ids.extend(a["id"] for a in answers if a["result"] == "stored")
            counts["duplicates"] += results.count("duplicate")
            counts["rejected"] += (
                len(results) - results.count("stored") - results.count("duplicate")
            )

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        **counts,
        "accepted": len(ids),
        "distinct_ids": len(set(ids)),
        "seconds": elapsed,
        "client_cpu_seconds": time.process_time() - cpu,
        "tickets_per_second": len(ids) / elapsed,
    }


async def open_loop(
    session: aiohttp.ClientSession, *, rate: float, seconds: float, body: Callable[[int], dict]
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    statuses: Counter[str] = Counter()

    async def send(i: int, due: float) -> None:
        nonlocal errors
        try:
            async with session.post("/v1/feedback", json=body(i)) as response:
                await response.read()
                ok = response.status == 202
                statuses[str(response.status)] += 1
        except FAILED:
            ok = False
            statuses["failed"] += 1
        if ok:
            latencies.append(loop.time() - due)
        else:
            errors += 1

    tasks, cpu, start = [], time.process_time(), loop.time() + 0.05
    for i, offset in enumerate(schedule(rate, seconds)):
        if (delay := start + offset - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, start + offset)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    ms = np.array(latencies or [np.nan]) * 1000
    return {
        "offered_rps": rate,
        "scheduled": len(tasks),
        "ok": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "client_cpu_seconds": time.process_time() - cpu,
        "achieved_rps": len(latencies) / elapsed,
        **{f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 90, 99)},
        "max_ms": float(ms.max()),
        "statuses": dict(statuses),
        "server_errors": server_errors(statuses),
    }


def server_errors(statuses: Mapping[str, int]) -> int:
    """Answers 500-599 but 503: a 503 (with Retry-After) is a busy server saying so."""
    return sum(n for s, n in statuses.items() if s.isdigit() and 500 <= int(s) < 600 and s != "503")


async def readers(
    session: aiohttp.ClientSession, *, clients: int, seconds: float, paths: Sequence[str]
) -> dict[str, Any]:
    """``clients`` closed loops, each reading ``paths`` in turn for ``seconds``: counts by
    status ("failed": no answer)."""
    statuses: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(first: int) -> None:
        for i in itertools.count(first):
            if time.perf_counter() >= deadline:
                return
            try:
                async with session.get(paths[i % len(paths)]) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except FAILED:
                statuses["failed"] += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    return {
        "requests": sum(statuses.values()),
        "statuses": dict(statuses),
        "server_errors": server_errors(statuses),
    }


async def drive(  # type: ignore[no-untyped-def]
    base: str, key: str, server_pid: int, *, seconds: float, rate: float, batch: int, clients: int
):
    async with aiohttp.ClientSession(
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=512),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        warm = {"items": [ticket("load-warmup", f"w{i}") for i in range(batch)]}  # untimed
        async with session.post("/v1/feedback", json=warm) as response:
            response.raise_for_status()
        cpu = cpu_seconds(server_pid)
        batches = await batch_ingest(session, clients=clients, batch=batch, seconds=seconds)
        batches["server_cpu_seconds"] = cpu_seconds(server_pid) - cpu
        await asyncio.sleep(1)
        cpu = cpu_seconds(server_pid)
        single = await open_loop(
            session, rate=rate, seconds=seconds, body=lambda i: ticket(SINGLE_SOURCE, f"s{i}")
        )
        single["server_cpu_seconds"] = cpu_seconds(server_pid) - cpu
    return batches, single


async def drive_mixed(
    base: str, ingest_key: str, read_key: str, *, seconds: float, rate: float, clients: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Single tickets in an open loop and ``clients`` readers at once: (ingest, reads)."""

    def connect(key: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=base,
            headers={"Authorization": f"Bearer {key}"},
            connector=aiohttp.TCPConnector(limit=512),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async with connect(ingest_key) as ingest, connect(read_key) as read:
        single, reads = await asyncio.gather(
            open_loop(
                ingest, rate=rate, seconds=seconds, body=lambda i: ticket(MIXED_SOURCE, f"m{i}")
            ),
            readers(read, clients=clients, seconds=seconds, paths=READ_PATHS),
        )
    return single, reads


def _count(url: str, query: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


PROCESSED = "SELECT count(*) FROM feedback WHERE status <> 'pending'"
REFRESHES = "SELECT count(*) FROM pipeline_run WHERE kind IN ('refresh', 'recluster')"


@contextmanager
def mixed_database(url: str, folder: Path) -> Iterator[str]:
    """A second new database next to ``url``'s, dropped afterwards."""
    if make_url(url).get_backend_name() == "sqlite":
        yield f"sqlite:///{folder / 'mixed.db'}"
        return
    assert PG_URL
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"triage_load_mix_{os.getpid()}"  # ends in the pid, as databases() expects
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _key(env: dict[str, str], scope: str) -> str:
    create = [TRIAGE, "keys", "create", "--scope", scope, "--name", f"bench-{scope}"]
    out = subprocess.run(create, env=env, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def mixed(url: str, folder: Path, label: str, **load: Any) -> dict[str, Any]:
    """Step 3: ``triage serve`` with its worker; the clock starts once the worker has
    processed the seed tickets and refreshed the issues (loading the models takes a while)."""
    env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": url,
        "TRIAGE_RATE_LIMIT_PER_MINUTE": "0",
        "TRIAGE_WORKER_REFRESH_SECONDS": str(MIXED_REFRESH_SECONDS),
    }
    subprocess.run([TRIAGE, "db", "upgrade"], env=env, check=True, capture_output=True)
    ingest_key, read_key = _key(env, "ingest"), _key(env, "read")
    log_path = folder / f"serve-mixed-{label.split()[0].lower()}.log"
    with serving(env, log_path, worker=True) as (base, _pid):
        seed = {"items": [ticket("load-seed", f"seed{i}") for i in range(MIXED_SEED)]}
        headers = {"Authorization": f"Bearer {ingest_key}"}
        httpx.post(f"{base}/v1/feedback", json=seed, headers=headers, timeout=120)
        deadline = time.monotonic() + 900
        while _count(url, PROCESSED) < MIXED_SEED or _count(url, REFRESHES) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not process the seed in 900 s; {log_path}")
            time.sleep(0.5)
        processed, refreshes = _count(url, PROCESSED), _count(url, REFRESHES)
        single, reads = asyncio.run(
            drive_mixed(
                base, ingest_key, read_key, seconds=load["seconds"], rate=load["rate"],
                clients=load["readers"],
            )
        )  # fmt: skip
        worked = _count(url, PROCESSED) - processed, _count(url, REFRESHES) - refreshes
    stored = (
        _count(url, f"SELECT count(*) FROM feedback WHERE source = '{MIXED_SOURCE}'"),
        _count(
            url, f"SELECT count(DISTINCT external_id) FROM feedback WHERE source = '{MIXED_SOURCE}'"
        ),
    )
    single["stored"] = stored[0]
    return {
        "single": single,
        "reads": reads,
        "processed": worked[0],
        "refreshes": worked[1],
        "exactly_once": stored[0] == stored[1] == single["ok"],
    }


@contextmanager
def serving(
    env: dict[str, str], log_path: Path, *, worker: bool = False, extra: Sequence[str] = ()
) -> Iterator[tuple[str, int]]:
    """``triage serve --no-worker`` (or with its worker; ``extra`` arguments too) on a free
    loopback port, once /readyz answers 200: its base URL and process id."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [TRIAGE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--worker" if worker else "--no-worker", *extra]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"triage serve did not become ready:\n{tail}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@contextmanager
def databases(folder: Path, log: Callable[[str], Any]) -> Iterator[list[tuple[str, str]]]:
    """(label, URL): a new SQLite file, and a new PostgreSQL database when configured."""
    found = [(f"SQLite {sqlite3.sqlite_version}", f"sqlite:///{folder / 'load.db'}")]
    if not PG_URL:
        log("PostgreSQL skipped: set TRIAGE_TEST_POSTGRES_URL to measure it too")
        yield found
        return
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"triage_load_{os.getpid()}"
    try:
        connection = admin.connect()
    except OperationalError as e:
        log(f"PostgreSQL skipped: cannot reach TRIAGE_TEST_POSTGRES_URL ({e.orig})")
        yield found
        return
    with connection:
        version = connection.execute(text("SHOW server_version")).scalar_one().split()[0]
        left = "SELECT datname FROM pg_database WHERE datname LIKE 'triage_load_%'"
        for datname in connection.execute(text(left)).scalars().all():
            pid = datname.rsplit("_", 1)[1]
            if datname == name or not (pid.isdigit() and _alive(int(pid))):  # left by a dead run
                connection.execute(text(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        yield [*found, (f"PostgreSQL {version}", url)]
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(
    label: str, url: str, folder: Path, *, readers: int = 4, mix: bool = True, **load: Any
) -> dict[str, Any]:
    env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_RATE_LIMIT_PER_MINUTE": "0"}
    subprocess.run([TRIAGE, "db", "upgrade"], env=env, check=True, capture_output=True)
    create = [TRIAGE, "keys", "create", "--scope", "ingest", "--name", "bench-load"]
    out = subprocess.run(create, env=env, check=True, capture_output=True, text=True).stdout
    key = out.strip().splitlines()[-1]
    log_path = folder / f"serve-{label.split()[0].lower()}.log"
    with serving(env, log_path) as (base, pid):
        batches, single = asyncio.run(drive(base, key, pid, **load))
    mixed_run = None
    if mix:
        with mixed_database(url, folder) as mixed_url:
            mixed_run = mixed(mixed_url, folder, label, readers=readers, **load)
    # What is stored, straight from the database: (rows, distinct external ids) per source.
    engine = create_engine(url)
    query = "SELECT source, count(*), count(DISTINCT external_id) FROM feedback GROUP BY source"
    with engine.connect() as connection:
        rows = {source: (n, d) for source, n, d in connection.execute(text(query))}
    engine.dispose()
    batch_rows, single_rows = rows.get(BATCH_SOURCE, (0, 0)), rows.get(SINGLE_SOURCE, (0, 0))
    exactly_once = (
        batch_rows[0] == batch_rows[1] == batches["accepted"]
        and batches["distinct_ids"] == batches["accepted"]
        and single_rows[0] == single_rows[1] == single["ok"]
    )
    if mixed_run is not None:
        exactly_once = exactly_once and mixed_run["exactly_once"]
    return {
        "database": label,
        "batch": {**batches, "stored": batch_rows[0]},
        "single": {**single, "stored": single_rows[0]},
        "mixed": mixed_run,
        "exactly_once": exactly_once,
    }


def run(
    *,
    seconds: float = 20,
    rate: float = 200,
    batch: int = 100,
    clients: int = 4,
    readers: int = 4,
    mix: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    load = {"seconds": seconds, "rate": rate, "batch": batch, "clients": clients}
    results: dict[str, Any] = {**load, "readers": readers, "databases": []}
    with tempfile.TemporaryDirectory() as tmp, databases(Path(tmp), log) as targets:
        for label, url in targets:
            log(f"{label}: {seconds:g}s of batches, then {seconds:g}s at {rate:g} requests/s"
                + (f", then {seconds:g}s of both with {readers} readers and the worker" if mix
                   else "") + " …")  # fmt: skip
            results["databases"].append(
                measure(label, url, Path(tmp), readers=readers, mix=mix, **load)
            )
    results["passed"] = all(
        d["exactly_once"] and (d["mixed"] is None or _mixed_clean(d["mixed"]))
        for d in results["databases"]
    )
    return results


def _mixed_clean(m: dict[str, Any]) -> bool:
    """No 5xx but 503 in the mixed run, and no request left without an answer."""
    answers = (m["single"]["statuses"], m["reads"]["statuses"])
    return not any(server_errors(s) or s.get("failed") for s in answers)


def table(results: dict[str, Any]) -> str:
    r = results
    lines = [
        "`triage serve --no-worker` (one uvicorn process) with rate limiting off "
        "(TRIAGE_RATE_LIMIT_PER_MINUTE=0), client on loopback in the same machine. Batches: "
        f"{r['clients']} clients x {r['batch']} tickets a request for {r['seconds']:g}s. "
        f"Single: open loop at {r['rate']:g} requests/s for {r['seconds']:g}s, latency from "
        "each request's scheduled send time.",
        "",
        "| database | batch ingestion tickets/s | single POST p50 ms | p99 ms | achieved rps "
        "| errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in r["databases"]:
        b, s = d["batch"], d["single"]
        lines.append(
            f"| {d['database']} | {b['tickets_per_second']:,.0f} | {s['p50_ms']:.1f} "
            f"| {s['p99_ms']:.1f} | {s['achieved_rps']:.1f} | {s['errors']} |"
        )
    lines.append("")
    lines += [
        f"Single POST p99 at {r['rate']:g} requests/s: "
        + "; ".join(f"{d['database']} {d['single']['p99_ms']:.1f} ms" for d in r["databases"])
        + " (target: 25 ms or less on both).",
    ]
    mixes = [d for d in r["databases"] if d["mixed"]]
    if mixes:
        lines += [
            "",
            f"Mixed, {r['seconds']:g}s, on a second new database: `triage serve` with its "
            f"worker ({MIXED_SEED} tickets processed and the issues refreshed before the clock "
            f"starts; then processing what arrives, refreshing every {MIXED_REFRESH_SECONDS} s), "
            f"single POSTs at "
            f"{r['rate']:g} requests/s and {r['readers']} clients reading "
            f"{' and '.join(f'`{p}`' for p in READ_PATHS)} in a loop.",
            "",
            "| database | single POST p50 ms | p99 ms | POST answers | reads | read answers "
            "| 5xx (not 503) | 503 | tickets processed | refreshes |",
            "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for d in mixes:
            m = d["mixed"]
            s, rd = m["single"], m["reads"]
            busy = s["statuses"].get("503", 0) + rd["statuses"].get("503", 0)
            lines.append(
                f"| {d['database']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
                f"| {_statuses(s['statuses'])} | {rd['requests']:,} | {_statuses(rd['statuses'])} "
                f"| {s['server_errors'] + rd['server_errors']} | {busy} | {m['processed']:,} "
                f"| {m['refreshes']} |"
            )
    lines.append("")
    for d in r["databases"]:
        b, s = d["batch"], d["single"]
        lines.append(
            f"{d['database']}: batches {b['accepted']:,} accepted, {b['stored']:,} stored, "
            f"{b['errors']} failed requests; "
            f"single {s['ok']:,} of {s['scheduled']:,} accepted, {s['stored']:,} stored: "
            f"{'exactly once' if d['exactly_once'] else 'MISMATCH'}. CPU seconds, batches then "
            f"single: server {b['server_cpu_seconds']:.1f} + {s['server_cpu_seconds']:.1f}, "
            f"client {b['client_cpu_seconds']:.1f} + {s['client_cpu_seconds']:.1f}."
        )
    return "\n".join(lines)


def _statuses(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,}× {s}" for s, n in sorted(counts.items())) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split(".")[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--rate", type=float, default=200, help="single POSTs a second")
    parser.add_argument("--batch", type=int, default=100, help="tickets per batch request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent batch clients")
    parser.add_argument("--readers", type=int, default=4, help="reading clients in the mix")
    parser.add_argument("--no-mix", action="store_true", help="skip the mixed run (step 3)")
    args = parser.parse_args(argv)
    results = run(
        seconds=args.seconds, rate=args.rate, batch=args.batch, clients=args.clients,
        readers=args.readers, mix=not args.no_mix,
    )  # fmt: skip
    print(table(results))
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
