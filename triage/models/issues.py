"""Units, issues, memberships, links and tracker exports: what the pipeline makes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field as PydanticField
from pydantic import ValidationInfo, field_validator
from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig  # pydantic's ConfigDict, as SQLModel types it

from triage.models.base import (
    MAX_ID,
    Category,
    IssueStatus,
    RowId,
    _Clean,
    _Output,
    _tz,
    http_url,
    utcnow,
)

# --- units: the statements a ticket is split into -------------------------------------------


class Unit(SQLModel, table=True):
    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("feedback_id", "position", name="uq_unit_feedback_pos"),)

    id: int | None = Field(default=None, primary_key=True)
    feedback_id: int = Field(foreign_key="feedback.id", index=True, ondelete="CASCADE")
    position: int
    text: str = Field(description="Redacted statement.")
    lemmas: str = Field(default="", description="Space-separated lemmas for keywords.")
    text_hash: str = Field(max_length=64, index=True, description="sha256 of the redacted text.")
    # The category a person confirmed for this statement: what `triage train` learns from.
    confirmed_category: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


# Vectors are keyed by text and model, so a text seen twice is embedded once.
class Embedding(SQLModel, table=True):
    __tablename__ = "embedding"
    __table_args__ = (UniqueConstraint("text_hash", "model_id", name="uq_embedding_text_model"),)

    id: int | None = Field(default=None, primary_key=True)
    text_hash: str = Field(max_length=64)
    model_id: str = Field(max_length=100)
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# --- issues: clusters of units, with a stable id ---------------------------------------------


class IssueBase(SQLModel):
    title: str = Field(default="", max_length=300)
    status: str = Field(default=IssueStatus.open, max_length=16)
    category: str | None = Field(default=None, max_length=16)
    category_confidence: float | None = None
    assignee: str | None = Field(default=None, max_length=255)
    external_url: str | None = Field(default=None, max_length=2000)


class Issue(IssueBase, table=True):
    __tablename__ = "issue"

    id: int | None = Field(default=None, primary_key=True)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    quotes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Which fields a person set; the machine never overwrites those.
    human_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    category_runner_up: str | None = Field(default=None, max_length=16)
    evidence: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    priority: float = 0.0
    priority_breakdown: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    size: int = 0
    customers: int = 0
    trend: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    model_versions: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    lineage: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    centroid: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # The cosine to the centroid a new unit needs to join between re-clusterings, calibrated on
    # the members at the last one (``cluster.Clustering.thresholds``); None: the global one.
    attach_threshold: float | None = None
    # A digest of what its labels, category and priority were last computed from: a refresh
    # redoes an issue only when it changed (``pipeline.diagnose``).
    refresh_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    resolved_at: datetime | None = Field(default=None, sa_type=_tz())
    # An issue merged into another keeps its row so old links resolve; it points to the survivor.
    merged_into: int | None = Field(default=None, foreign_key="issue.id")


class IssuePublic(IssueBase, _Output):
    id: int
    keywords: list[str]
    quotes: list[str]
    category_runner_up: str | None
    evidence: list[dict[str, Any]]
    priority: float
    priority_breakdown: dict[str, Any]
    size: int
    customers: int
    trend: dict[str, Any]
    model_versions: list[dict[str, Any]]
    lineage: list[dict[str, Any]]
    merged_into: int | None = PydanticField(
        default=None, description="Set when status is `merged`: the issue that absorbed this one."
    )
    created_at: datetime
    updated_at: datetime


# What a person may change on an issue; only the fields sent are changed.
class IssueUpdate(_Clean):
    model_config = SQLModelConfig(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    category: Category | None = None
    status: IssueStatus | None = None
    assignee: str | None = Field(default=None, max_length=255)
    external_url: str | None = Field(default=None, max_length=2000)
    confirm_units: list[RowId] | Literal["all"] | None = Field(
        default=None,
        description="With `category`: the statements (unit ids of this issue, or `all` of them) "
        "a person confirms are of that category; only these become training labels for "
        "`triage train`. Left out, the correction trains on nothing.",
    )

    @field_validator("title", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Absent means "leave it"; an explicit null would erase a field that must have a value.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value.")
        return value

    @field_validator("external_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("status")
    @classmethod
    def _not_merged(cls, value: Any) -> Any:
        if value == IssueStatus.merged:
            raise ValueError(
                "an issue becomes merged by POST /v1/issues/{id}/merge, not by a status."
            )
        return value

    @field_validator("confirm_units")
    @classmethod
    def _confirm_needs_category(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("category") is None:
            raise ValueError("needs the category the statements are confirmed as, in `category`.")
        return value


class IssueMerge(SQLModel):
    model_config = SQLModelConfig(extra="forbid")

    into: int = Field(ge=1, le=MAX_ID, description="The issue that absorbs this one.")


class UnitMove(SQLModel):
    model_config = SQLModelConfig(extra="forbid")

    unit_ids: list[RowId] = Field(min_length=1, max_length=10_000)


# --- export: an issue sent to the tracker where engineers work ---------------------------------


class Tracker(StrEnum):
    github = "github"
    jira = "jira"
    linear = "linear"


# What a client asks for: which tracker gets the issue.
class IssueExport(SQLModel):
    model_config = SQLModelConfig(extra="forbid")

    tracker: Tracker


# The tracker's ticket for an issue; ``created`` is false when an earlier export made it.
class IssueExportPublic(_Output):
    issue_id: int
    tracker: Tracker
    ticket_id: str = PydanticField(description="The tracker's own id of the ticket.")
    key: str = PydanticField(description="What people call it: owner/repo#12, ENG-42.")
    url: str
    created: bool
    exported_at: datetime


class IssuesPublic(SQLModel):
    items: list[IssuePublic]
    total: int


# A member ticket's statements in the issue, with the unit ids that split and move take.
class IssueUnitPublic(SQLModel):
    unit_id: int
    position: int
    text: str = Field(description="Redacted statement.")


class IssueMemberPublic(_Output):
    feedback_id: int
    written_at: datetime
    status: str
    units: list[IssueUnitPublic]


class IssueMembersPublic(SQLModel):
    items: list[IssueMemberPublic]
    total: int


# A unit belongs to at most one issue.
class Membership(SQLModel, table=True):
    __tablename__ = "membership"

    unit_id: int = Field(foreign_key="unit.id", primary_key=True, ondelete="CASCADE")
    issue_id: int = Field(foreign_key="issue.id", index=True)
    method: str = Field(max_length=16, description="cluster, assigned or manual")
    similarity: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


# --- links: which model output a ticket was about -------------------------------------------


class Link(SQLModel, table=True):
    __tablename__ = "link"
    __table_args__ = (UniqueConstraint("feedback_id", "model_output_id", name="uq_link_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    feedback_id: int = Field(foreign_key="feedback.id", index=True, ondelete="CASCADE")
    # On PostgreSQL the key references model_output_key.id (0007): a partitioned table's ids
    # cannot be referenced.
    model_output_id: int = Field(foreign_key="model_output.id", index=True)
    method: str = Field(max_length=16, description="explicit, user, session or content")
    confidence: float
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
