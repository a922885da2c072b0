"""Model outputs: what the ML service showed a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Discriminator, Tag
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig  # pydantic's ConfigDict, as SQLModel types it

from triage.models.base import (
    MAX_BATCH_ITEMS,
    FieldWarning,
    _Input,
    _Output,
    _single_or_batch,
    _tz,
    utcnow,
)

# --- model outputs: what the ML service showed a customer ------------------------------------


class ModelOutputBase(_Input):
    output_id: str = Field(min_length=1, max_length=255)
    model: str = Field(min_length=1, max_length=255)
    model_version: str | None = Field(default=None, max_length=100)
    feature: str | None = Field(default=None, max_length=255)
    input: str | None = Field(default=None, max_length=100_000)
    output: str | None = Field(default=None, max_length=100_000)
    confidence: float | None = Field(default=None, ge=0, le=1)
    latency_ms: float | None = Field(default=None, ge=0)
    created_at: datetime | None = Field(default=None, sa_type=_tz())
    user_id: str | None = Field(default=None, max_length=255)
    session_id: str | None = Field(default=None, max_length=255)


# Where an output logged from a trace (POST /v1/traces) keeps its trace id in ``metadata``, so a
# ticket naming the trace id links to it (triage.link).
TRACE_ID_PATH = ("otel", "trace_id")


# What the ML service sends; fields we do not read are kept aside (model_extra), as a ticket's.
class ModelOutputCreate(ModelOutputBase):
    model_config = SQLModelConfig(extra="allow")

    meta: dict[str, Any] | None = Field(default=None, alias="metadata")


class ModelOutput(ModelOutputBase, table=True):
    __tablename__ = "model_output"
    __table_args__ = (
        UniqueConstraint("output_id", name="uq_model_output_output_id"),
        Index("ix_model_output_user_created", "user_id", "created_at"),
        Index("ix_model_output_session_created", "session_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    content_sha256: str = Field(max_length=64)
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JSON))
    received_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


class ModelOutputBatchCreate(SQLModel):
    model_config = SQLModelConfig(extra="allow")

    items: list[ModelOutputCreate] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


ModelOutputPayload = Annotated[
    Annotated[ModelOutputCreate, Tag("single")] | Annotated[ModelOutputBatchCreate, Tag("batch")],
    Discriminator(_single_or_batch),
]


class ModelOutputAccepted(SQLModel):
    id: int
    output_id: str
    duplicate: bool
    warnings: list[FieldWarning] = Field(default_factory=list)


class ModelOutputBatchAccepted(SQLModel):
    items: list[ModelOutputAccepted]
    warnings: list[FieldWarning] = Field(
        default_factory=list, description="Unknown fields of the batch object itself."
    )


# Fields of a stored output that came from outside and may hold personal data; the API shows
# them redacted, as it does a ticket's.
MODEL_OUTPUT_REDACTED_ON_READ = ("input", "output", "user_id", "session_id", "metadata")


# What the API returns for one output; redacted on read, so without the input length limits.
class ModelOutputPublic(_Output):
    id: int
    output_id: str
    model: str
    model_version: str | None = None
    feature: str | None = None
    input: str | None = None
    output: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    created_at: datetime | None = None
    user_id: str | None = None
    session_id: str | None = None
    meta: dict[str, Any] | None = Field(default=None, alias="metadata")
    received_at: datetime
