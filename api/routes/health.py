"""Liveness and readiness, without auth, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from triage import db
from triage.errors import TriageError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema current")
def readyz(request: Request) -> JSONResponse:
    try:
        current, head = db.schema_state(request.app.state.engine)
    except TriageError as e:
        return JSONResponse(status_code=503, content={"status": "unavailable", "reason": e.message})
    if current != head:
        return JSONResponse(
            status_code=503,
            content={
                "status": "unavailable",
                "reason": f"schema at {current}, needs {head}: run `triage db upgrade`",
            },
        )
    return JSONResponse(content={"status": "ready", "schema": current})
