"""The record of pipeline runs."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from triage.models import PipelineRun, utcnow


def record_run(session: Session, *, kind: str, stats: dict[str, Any]) -> PipelineRun:
    run = PipelineRun(kind=kind, stats=stats, status="done", finished_at=utcnow())
    session.add(run)
    return run
