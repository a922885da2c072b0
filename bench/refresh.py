"""Refresh cost against stored traffic (issue 17): a refresh with nothing pending and with 1,000
new tickets, at each size of stored model outputs, and ingestion with that many stored.

    .venv/bin/python -m bench.refresh                        # 10k and 100k outputs
    .venv/bin/python -m bench.refresh --sizes 10000 1000000  # the bar: 1M within 1.5x of 10k

On a new SQLite file, and a new PostgreSQL database ``triage_refresh_<pid>`` on the server of
``TRIAGE_TEST_POSTGRES_URL`` when it is set (dropped afterwards). For each size, untimed: the
fixtures' 1,330 outputs and 342 labelled tickets, then synthetic outputs up to the size (copies of
the fixtures' outputs spread over the same weeks, sources as old as the originals'), written
straight to the table; then ``triage run`` once (processes the tickets, rolls up every output:
its seconds are reported as ``first_run``). Timed, each in a process of its own so its peak
memory (``ru_maxrss``) is its own:

- ``nothing_pending``: ``Pipeline.refresh`` with no new ticket or output;
- ``new_tickets``: ``Pipeline.run`` after 1,000 new tickets, each written two minutes after a
  stored output of its session (so linking has work to do);
- ingestion in this process through the store (no HTTP; bench.load measures the API): 10 batches
  of 1,000 outputs and 10 batches of 100 tickets, per second.

The embedder is the fake one unless ``--embedder default``: what is measured is what traffic
costs, not embedding the tickets, which is the same at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PG_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
NEW_TICKETS = 1000


def _fixture(name: str) -> list[dict[str, Any]]:
    with (FIXTURES / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def synthetic_outputs(start: int, count: int) -> Iterator[dict[str, Any]]:
    """Rows for ``model_output``: the fixtures' outputs again, moved in time by a few days with
    their sources, under new ids, users and sessions."""
    base = _fixture("model_outputs.jsonl")
    now = datetime.now(UTC)
    for i in range(start, start + count):
        row = base[i % len(base)]
        shift = timedelta(minutes=(i * 7919) % (21 * 24 * 60) - 10 * 24 * 60)
        meta = json.loads(json.dumps(row.get("metadata") or {}))
        for source in meta.get("sources") or []:
            if source.get("as_of"):
                as_of = _when(source["as_of"]) if "T" in source["as_of"] else None
                day = datetime.fromisoformat(source["as_of"][:10]).date() + shift
                source["as_of"] = (as_of + shift).isoformat() if as_of else day.isoformat()
        yield {
            "output_id": f"bench-{i}",
            "model": row["model"],
            "model_version": row.get("model_version"),
            "feature": row.get("feature"),
            "input": row.get("input"),
            "output": row.get("output"),
            "confidence": row.get("confidence"),
            "latency_ms": row.get("latency_ms"),
            "created_at": _when(row["created_at"]) + shift,
            "user_id": f"bench-user-{i % 20_000}",
            "session_id": f"bench-session-{i}",
            "metadata": meta,
            "content_sha256": f"{i:064d}",
            "received_at": now,
        }


def fill(url: str, size: int, log: Callable[[str], Any]) -> None:
    """The fixtures' outputs and tickets, then synthetic outputs up to ``size`` in all."""
    from sqlalchemy import insert

    from triage import db, store
    from triage.models import FeedbackCreate, ModelOutput, ModelOutputCreate

    db.upgrade(url)
    engine = db.get_engine(url)
    outputs = _fixture("model_outputs.jsonl")
    with db.session_scope(engine) as session:
        store.add_model_outputs(
            session, items=[ModelOutputCreate.model_validate(o) for o in outputs]
        )
        store.add_feedback(session, items=[
            FeedbackCreate.model_validate({k: v for k, v in t.items()
                                           if k not in ("label", "split", "product")})
            for t in _fixture("labelled.jsonl")
        ])  # fmt: skip
    started, chunk = time.perf_counter(), 20_000
    for start in range(len(outputs), size, chunk):
        rows = list(synthetic_outputs(start, min(chunk, size - start)))
        with engine.begin() as connection:
            connection.execute(insert(ModelOutput.__table__), rows)  # type: ignore[attr-defined]
    log(f"  {size:,} outputs stored in {time.perf_counter() - started:.0f} s")


def new_tickets(url: str, count: int, size: int) -> None:
    """``count`` tickets, each two minutes after a stored synthetic output of its session."""
    from triage import db, store
    from triage.models import FeedbackCreate

    texts = [t["text"] for t in _fixture("labelled.jsonl")]
    step = max(1, (size - 1330) // count)
    outputs = synthetic_outputs(1330, size - 1330)
    chosen = [row for i, row in enumerate(outputs) if i % step == 0][:count]
    with db.session_scope(db.get_engine(url)) as session:
        store.add_feedback(session, items=[
            FeedbackCreate(source="bench", external_id=f"new-{i}", text=texts[i % len(texts)],
                           created_at=row["created_at"] + timedelta(minutes=2),
                           user_id=row["user_id"], session_id=row["session_id"])
            for i, row in enumerate(chosen)
        ])  # fmt: skip


def ingestion(url: str) -> dict[str, float]:
    """Outputs/s and tickets/s through the store, 10 batches each, with everything stored."""
    from triage import db, store
    from triage.models import FeedbackCreate, ModelOutputCreate

    engine = db.get_engine(url)
    batches = [
        [ModelOutputCreate.model_validate({**o, "output_id": f"ingest-{n}-{o['output_id']}"})
         for o in _fixture("model_outputs.jsonl")[:1000]]
        for n in range(10)
    ]  # fmt: skip
    started = time.perf_counter()
    for items in batches:
        with db.session_scope(engine) as session:
            store.add_model_outputs(session, items=items)
    outputs_per_s = 10_000 / (time.perf_counter() - started)
    tickets = [
        [FeedbackCreate(source="ingest", external_id=f"t-{n}-{i}", text=f"Ticket {n} {i}: the "
                        "summary left out the action items again.") for i in range(100)]
        for n in range(10)
    ]  # fmt: skip
    started = time.perf_counter()
    for ticket_batch in tickets:
        with db.session_scope(engine) as session:
            store.add_feedback(session, items=ticket_batch)
    return {"outputs_per_s": outputs_per_s, "tickets_per_s": 1000 / (time.perf_counter() - started)}


def child(what: str) -> None:
    """In a process of its own: one refresh or run; prints seconds and peak memory."""
    from triage import db
    from triage.config import Settings
    from triage.pipeline import Pipeline

    settings = Settings()
    engine = db.get_engine(settings.database_url)
    pipeline = Pipeline(settings)
    started = time.perf_counter()
    if what == "refresh":
        stats = pipeline.refresh(engine)
    else:
        _, stats = pipeline.run(engine)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "seconds": round(time.perf_counter() - started, 2),
        # Of the whole process, imports and model loading included: steadier than wall
        # seconds on a shared machine.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "rolled_up": stats.rolled_up, "phases": {k: round(v, 2) for k, v in stats.seconds.items()},
        "decided": stats.decided, "issues_redone": stats.issues_redone,
    }))  # fmt: skip


def timed_child(url: str, what: str, embedder: str) -> dict[str, Any]:
    env = {**os.environ, "TRIAGE_DATABASE_URL": url}
    if embedder == "fake":
        env["TRIAGE_EMBEDDING_BACKEND"] = "fake"
    command = [sys.executable, "-m", "bench.refresh", "--child", what]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def database(kind: str, folder: Path, size: int) -> Iterator[str]:
    if kind == "sqlite":
        path = folder / f"refresh-{size}.db"
        yield f"sqlite:///{path}"
        for leftover in folder.glob(f"{path.name}*"):
            leftover.unlink()
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    assert PG_URL
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"triage_refresh_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from triage import db

        db.get_engine(make_url(PG_URL).set(database=name).render_as_string(False)).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(
    *,
    sizes: tuple[int, ...] = (10_000, 100_000),
    embedder: str = "fake",
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    kinds = [k for k in databases if k == "sqlite" or PG_URL]
    if "postgresql" in databases and not PG_URL:
        log("PostgreSQL skipped: set TRIAGE_TEST_POSTGRES_URL to measure it too")
    results: dict[str, Any] = {"embedder": embedder, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for size in sizes:
                log(f"{kind}, {size:,} outputs …")
                with database(kind, Path(tmp), size) as url:
                    fill(url, size, log)
                    first = timed_child(url, "run", embedder)
                    idle = timed_child(url, "refresh", embedder)
                    new_tickets(url, NEW_TICKETS, size)
                    busy = timed_child(url, "run", embedder)
                    rates = ingestion(url)
                results["runs"].append({
                    "database": kind, "outputs": size, "first_run": first,
                    "nothing_pending": idle, "new_tickets": busy, **rates,
                })  # fmt: skip
                log(table({"runs": results["runs"][-1:]}).splitlines()[-1])
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| database | outputs | first run (rolls up all) | refresh, nothing pending | "
        f"run, {NEW_TICKETS:,} new tickets | outputs/s | tickets/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        first, idle, busy = r["first_run"], r["nothing_pending"], r["new_tickets"]
        lines.append(
            f"| {r['database']} | {r['outputs']:,} | {_cell(first)} | {_cell(idle)} | "
            f"{_cell(busy)} | {r['outputs_per_s']:,.0f} | {r['tickets_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def _cell(run: dict[str, Any]) -> str:
    return f"{run['seconds']:.1f} s ({run['cpu_seconds']:.1f} s CPU), {run['peak_mb']} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--embedder", choices=["fake", "default"], default="fake")
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--child", choices=["refresh", "run"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    results = run(sizes=tuple(args.sizes), embedder=args.embedder, databases=tuple(args.databases))
    print(table(results))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
