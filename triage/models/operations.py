"""Operations: pipeline runs, API keys, stored digests and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from triage.models.base import _tz, utcnow

# --- operations --------------------------------------------------------------------------------


class PipelineRun(SQLModel, table=True):
    __tablename__ = "pipeline_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, description="process, refresh or recluster")
    started_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    finished_at: datetime | None = Field(default=None, sa_type=_tz())
    status: str = Field(default="running", max_length=16)
    stats: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = None


# Only the sha256 of a key is stored; the key itself is shown once, when it is created.
class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=255)
    scope: str = Field(max_length=16)
    prefix: str = Field(max_length=16, description="First characters, to recognise a key.")
    key_hash: str = Field(max_length=64, unique=True)
    # The sources an ingest key may write; None: any (keys made before 0003 stay unbound).
    sources: list[str] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    revoked_at: datetime | None = Field(default=None, sa_type=_tz())
    last_used_at: datetime | None = Field(default=None, sa_type=_tz())


# A generated weekly digest, kept so last month's digest reads the same next year.
class Digest(SQLModel, table=True):
    __tablename__ = "digest"
    __table_args__ = (UniqueConstraint("week", "format", name="uq_digest_week_format"),)

    id: int | None = Field(default=None, primary_key=True)
    week: str = Field(max_length=10, description="ISO week, e.g. 2026-W47")
    format: str = Field(max_length=8, description="html or md")
    content: str
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    generated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    delivered_at: datetime | None = Field(default=None, sa_type=_tz())


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    actor: str = Field(default="", max_length=255, description="key name or cli user")
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
