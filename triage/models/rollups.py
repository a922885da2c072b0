"""Traffic rollups: every logged model output counted and sketched per day, model, version and
feature (``triage.link.rollup``), so a refresh never reads all outputs and pruned outputs still
count in traffic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, UniqueConstraint
from sqlmodel import Field, SQLModel

from triage.models.base import _tz, utcnow


# One row per (day, model, version, feature); a missing version or feature is "" so the key is
# unique on every database (NULLs never collide in a unique constraint).
class OutputRollup(SQLModel, table=True):
    __tablename__ = "output_rollup"
    __table_args__ = (
        UniqueConstraint("day", "model", "model_version", "feature", name="uq_output_rollup_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=Column(Date, nullable=False))
    model: str = Field(max_length=255)
    model_version: str = Field(default="", max_length=100)
    feature: str = Field(default="", max_length=255)
    n: int = 0
    sketch: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


# How far the rollups have read: every output with id <= last_output_id is rolled up, and only
# those may be pruned. One row, name "model_output". ``sketch`` is the merge of every rollup
# row's sketch, written in the same transaction as the rows, so a refresh reads one sketch
# instead of merging them all; NULL until the first roll-up after migration 0009.
class RollupWatermark(SQLModel, table=True):
    __tablename__ = "rollup_watermark"

    name: str = Field(primary_key=True, max_length=64)
    last_output_id: int = 0
    sketch: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
