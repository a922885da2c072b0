"""``triage run``, ``triage worker`` and ``triage serve``: processing, once, forever, or behind the
HTTP API."""

from __future__ import annotations

import atexit
import gc
import logging
import signal
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from triage import db, store
from triage.cli.app import _errors, _progress, _ready, console
from triage.config import Settings, get_settings


def _import_pipeline() -> Any:
    """``triage.pipeline.Pipeline``. Its first import (spaCy, presidio, scipy, scikit-learn)
    makes millions of objects that live as long as the process; the garbage collector pauses
    while they are made and then leaves them out of its passes (``gc.freeze``), which would
    otherwise walk them all on every full collection: ~0.8 s of a 10,000-ticket run."""
    first = "triage.pipeline" not in sys.modules
    enabled = gc.isenabled()
    if first:
        gc.disable()
    try:
        from triage.pipeline import Pipeline
    finally:
        if first:
            gc.freeze()
            if enabled:
                gc.enable()
    return Pipeline


def _run(settings: Settings, *, recluster: bool, retry_failed: bool) -> None:
    Pipeline = _import_pipeline()
    engine = _ready(settings, write=True)
    with db.session_scope(engine) as session:
        pending = store.count_feedback_by_status(session).get("pending", 0)
    from triage.pipeline import PHASES

    with _progress() as progress:
        task = progress.add_task("processing feedback", total=pending)
        refresh = progress.add_task("refreshing issues", total=len(PHASES), visible=False)

        def phase(name: str) -> None:
            # Phases a refresh skips (no re-cluster) count as done.
            done = list(PHASES).index(name)
            description = f"refreshing issues: {PHASES[name]}"
            progress.update(refresh, completed=done, description=description, visible=True)

        def within(done: int, total: int) -> None:
            # A first refresh after a backfill rolls up millions of outputs: say how far.
            description = f"refreshing issues: {PHASES['rollup']} ({done:,} of {total:,})"
            progress.update(refresh, description=description)

        processed, refreshed = Pipeline(settings).run(
            engine,
            recluster=recluster,
            retry_failed=retry_failed,
            progress=lambda n: progress.advance(task, n),
            phase=phase,
            within=within,
        )
        progress.update(refresh, completed=len(PHASES), description="refreshing issues: done")
    console.print(
        f"processed {processed.processed}, failed {processed.failed}, units {processed.units} "
        f"(embedded {processed.embedded}, from cache {processed.cache_hits}); "
        f"{refreshed.issues} issues{' after a re-cluster' if refreshed.reclustered else ''}, "
        f"{refreshed.unassigned_share:.0%} of units unassigned; "
        f"{refreshed.decided} tickets and {refreshed.issues_redone} issues decided, "
        "the rest kept from the last refresh"
    )
    if refreshed.reembedded:
        console.print(
            f"embedded {refreshed.reembedded} statement texts again: they had no vector of the "
            f"configured embedding model ({settings.embedding_backend})"
        )
    if refreshed.skipped:
        console.print(f"skipped: {', '.join(refreshed.skipped)}")


def _exit_without_collecting(url: str) -> None:
    """At exit, close the database connections (SQLite folds its write-ahead log back into the
    file) and exempt every object alive from the garbage collector: its passes at interpreter
    shutdown walk everything spaCy, presidio, scipy and the run built (~0.5 s), only to free
    memory the operating system takes back anyway."""
    db.get_engine(url).dispose()
    gc.freeze()


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"


def run(
    recluster: Annotated[bool, typer.Option(help="Re-cluster everything.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try failed tickets again.")] = False,
    log_level: Annotated[
        LogLevel, typer.Option(help="triage's log messages to stderr; debug adds stage timings.")
    ] = LogLevel.warning,
) -> None:
    """Process everything pending and refresh the issues."""
    if log_level != LogLevel.warning:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("triage").addHandler(handler)
        logging.getLogger("triage").setLevel(log_level.upper())
    with _errors():
        settings = get_settings()
        _run(settings, recluster=recluster, retry_failed=retry_failed)
    atexit.register(_exit_without_collecting, settings.database_url)


def worker() -> None:
    """Process pending tickets until stopped (Ctrl-C). Several may run on PostgreSQL."""
    from triage.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with _errors():
        w = Worker(get_settings())
        # Ctrl-C or SIGTERM (docker stop, systemd) ends the round under way, then the worker:
        # a batch is never cut in half, and a signal that lands inside a C call is not lost.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, lambda *_: w.stop())
        w.run_forever()


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run a worker too, as a child process at a lower CPU priority that stops with "
            "the server."
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (uvicorn workers). The worker, when on, runs "
            "once, started by the process that supervises them. Set TRIAGE_REDIS_URL so the "
            "rate limits hold across them.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs), with a worker as its child process by
    default."""
    import uvicorn

    settings = get_settings()
    with _errors():
        db.ensure_schema(settings.database_url, allow_upgrade=settings.auto_upgrade_sqlite)
    if workers == 1:
        from api.main import create_app

        uvicorn.run(create_app(settings, run_worker=worker), host=host, port=port)
        return
    if settings.redis_url is None and settings.rate_limit_per_minute > 0:
        console.print(
            f"note: TRIAGE_REDIS_URL is not set, so each of the {workers} API processes keeps "
            "its own rate limits: a key may make up to "
            f"{workers} x {settings.rate_limit_per_minute} requests a minute."
        )
    # uvicorn starts each API process afresh (spawn), from the same environment, by import path;
    # the worker is started from here, one per `triage serve`, instead of one per API process.
    background = None
    if worker:
        from triage.worker import BackgroundWorker

        background = BackgroundWorker(settings)
        background.start()
    try:
        uvicorn.run("api.main:app_factory", factory=True, host=host, port=port, workers=workers)
    finally:
        if background is not None:
            background.stop()
