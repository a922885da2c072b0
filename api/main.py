"""The FastAPI application. OpenAPI docs at ``/docs``.

``uvicorn --factory api.main:app_factory`` or ``triage serve``. Routes are thin: they validate,
call ``triage/``, and shape the answer.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api.deps import ConnectionGate, KeyCache
from api.docs import install_docs
from api.errors import BodySizeLimit, install_error_handlers
from api.routes import digests, feedback, health, integrations, issues, model_outputs, traces
from api.security import SecurityHeaders
from api.shared_limits import build_limiter
from api.ui import install_ui
from triage import db
from triage.config import Settings, get_settings

logger = logging.getLogger("triage.api")


def create_app(settings: Settings | None = None, *, run_worker: bool = False) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.ensure_schema(settings.database_url, allow_upgrade=settings.auto_upgrade_sqlite)
        # Routes are plain functions that FastAPI runs in AnyIO's thread pool; its limiter is
        # shared by the process, so it is set where the server starts.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        worker = None
        if run_worker:
            # A child process at a lower CPU priority: its embedding and clustering never hold
            # this process's GIL while a request waits (triage/worker.py, BackgroundWorker).
            from triage.worker import BackgroundWorker

            worker = BackgroundWorker(settings)
            worker.start()
        # What start-up made (FastAPI, pydantic, SQLAlchemy: ~200,000 objects) lives as long as
        # the process; out of the garbage collector's way, a full pass no longer walks them all
        # (50-130 ms here, a pause of every request under way).
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(
        title="triage",
        summary="Customer feedback about ML products, turned into ranked engineering issues.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by api/docs.py from a pinned package instead of FastAPI's CDN links.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # A pool that fits the threads, and slots that keep requests from waiting on it (api.deps).
    app.state.engine = db.get_api_engine(
        settings.database_url, threads=settings.api_threads,
        wait_seconds=settings.api_db_wait_seconds,
    )  # fmt: skip
    app.state.db_gate = ConnectionGate(settings.api_threads, settings.api_db_wait_seconds)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    # Shared by every API process through Redis when TRIAGE_REDIS_URL is set, else per process.
    app.state.rate_limiter = build_limiter(
        settings, name="key", per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
    )  # fmt: skip
    app.state.auth_failures = build_limiter(
        settings, name="auth-failures", per_minute=settings.auth_failures_per_minute,
        burst=settings.auth_failures_burst,
    )  # fmt: skip
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so it is the outermost: the 413 above gets the headers too.
    app.add_middleware(SecurityHeaders, docs_paths=install_docs(app))
    for module in (health, feedback, model_outputs, traces, issues, digests, integrations):
        app.include_router(module.router)
    install_ui(app)
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory api.main:app_factory``."""
    return create_app()
