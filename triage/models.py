"""The whole domain: every table and the request/response shapes built from it.

Each entity is a small family: ``XBase`` (shared fields), ``XCreate`` (what a client sends),
``X`` (the table), ``XPublic`` (what the API returns). ``metadata`` is a reserved name on
SQLAlchemy models, so the attribute is ``meta`` and the JSON key/column is ``metadata``.
"""

from __future__ import annotations

import difflib
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, overload

from pydantic import Discriminator, Tag, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig  # pydantic's ConfigDict, as SQLModel types it

from triage.errors import UnknownFieldsError
from triage.integrations.html import to_text


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _tz() -> Any:
    return DateTime(timezone=True)


class FeedbackStatus(StrEnum):
    pending = "pending"
    processed = "processed"
    failed = "failed"


class IssueStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"
    ignored = "ignored"
    regressed = "regressed"


class Category(StrEnum):
    ui = "ui"
    data = "data"
    model = "model"
    expectation = "expectation"


class Scope(StrEnum):
    ingest = "ingest"
    read = "read"
    admin = "admin"


# Deepest nesting of objects and lists accepted in metadata. Real metadata is a few levels deep;
# a bound keeps every JSON encoder and decoder on the way (ours, the driver's, PostgreSQL's) far
# from its recursion limit.
MAX_METADATA_DEPTH = 20

NUL_MESSAGE = (
    "contains a NUL character (\\u0000); PostgreSQL cannot store it in text. Remove it: text is "
    "stored exactly as sent, so it is rejected rather than silently changed."
)


def _check_text(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(NUL_MESSAGE)
        # JSON's "\ud800" escape decodes to a lone surrogate, which no database can encode.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValueError(
                    "contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is "
                    "not valid Unicode; send the character itself or its full surrogate pair."
                ) from e
    return value


def _check_metadata(value: Any, depth: int = 1) -> None:
    """Reject what a JSON column cannot keep faithfully: NUL, NaN/Infinity, deep nesting."""
    if isinstance(value, dict | list):
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"is nested deeper than {MAX_METADATA_DEPTH} levels; flatten it.")
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            _check_text(key)
            _check_metadata(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("contains NaN or Infinity, which JSON cannot carry; send a finite number.")
    else:
        _check_text(value)


class _Clean(SQLModel):
    """What every client-sent shape shares: no NUL in any text, no NaN or Infinity anywhere."""

    model_config = SQLModelConfig(allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _check_text(value)


class _Input(_Clean):
    model_config = SQLModelConfig(populate_by_name=True, str_strip_whitespace=False)

    @field_validator("created_at", mode="after", check_fields=False)
    @classmethod
    def _created_at_utc(cls, value: datetime | None) -> datetime | None:
        # A timestamp without a zone is read as UTC, the convention of every log shipper we know.
        try:
            return as_utc(value)
        except OverflowError as e:
            # 9999-12-31T23:00:00-05:00 is a valid timestamp but past the last representable UTC
            # instant; the ValueError makes it a 422 naming the field.
            raise ValueError("is out of range once converted to UTC.") from e

    @field_validator(
        "external_id", "customer_id", "user_id", "session_id", "output_id",
        mode="before", check_fields=False,
    )  # fmt: skip
    @classmethod
    def _numeric_id_as_text(cls, value: Any) -> Any:
        # Zendesk and Intercom ids are JSON integers; an id is a name, so 123 is stored as "123".
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("meta", mode="after", check_fields=False)
    @classmethod
    def _metadata_storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        _check_metadata(value)
        return value


class _Output(SQLModel):
    @field_validator("*", mode="after")
    @classmethod
    def _datetimes_utc(cls, value: Any) -> Any:
        return as_utc(value) if isinstance(value, datetime) else value


# --- feedback: one ticket, review or survey answer -------------------------------------------


# Fields a client sends and reads back.
class FeedbackBase(_Input):
    source: str = Field(min_length=1, max_length=100, description="e.g. zendesk, intercom")
    external_id: str = Field(min_length=1, max_length=255, description="The id in the source.")
    created_at: datetime | None = Field(default=None, sa_type=_tz())
    customer_id: str | None = Field(default=None, max_length=255)
    customer_value: float | None = Field(default=None, ge=0, description="e.g. account value")
    user_id: str | None = Field(default=None, max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    output_id: str | None = Field(default=None, max_length=255, description="Model output seen.")


# What a client sends; text length is checked against Settings at the edge as well. Fields we do
# not read are kept aside (model_extra) so the answer can name them instead of dropping them.
class FeedbackCreate(FeedbackBase):
    model_config = SQLModelConfig(extra="allow")

    text: str = Field(min_length=1, max_length=20_000)
    meta: dict[str, Any] | None = Field(default=None, alias="metadata")

    @field_validator("text", mode="after")
    @classmethod
    def _html_as_text(cls, value: str) -> str:
        # Support tools send HTML bodies; tags would be clustered as words (triage.integrations.html
        # says which texts count as HTML).
        text = to_text(value)
        if not text.strip():
            raise ValueError("is HTML with no text in it.")
        return text


# The stored ticket. The raw text may be dropped after processing (TRIAGE_KEEP_RAW_TEXT=false);
# text_sha256 still lets a retry be recognised.
class Feedback(FeedbackBase, table=True):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_feedback_source_external_id"),
        Index("ix_feedback_status_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    text: str | None = Field(default=None)
    text_sha256: str = Field(max_length=64)
    redacted_text: str | None = Field(default=None)
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JSON))
    received_at: datetime = Field(default_factory=utcnow, sa_type=_tz())
    processed_at: datetime | None = Field(default=None, sa_type=_tz())
    linked_at: datetime | None = Field(default=None, sa_type=_tz(), description="Links decided.")
    status: str = Field(default=FeedbackStatus.pending, max_length=16)
    last_error: str | None = Field(default=None)
    attempts: int = Field(default=0)
    # The ticket's own category, from its own statements and linked outputs (the refresh).
    category: str | None = Field(default=None, max_length=16)
    category_confidence: float | None = None
    category_evidence: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sql_text("'[]'")),
    )


# What a client sent besides the text, stored as sent (linking needs the real ids), and the
# error, which may quote it: every read passes them through the redactor (triage.redaction).
# Evidence is built from redacted texts only (tickets, and examples since `triage train`).
FEEDBACK_REDACTED_ON_READ = (
    "source", "external_id", "customer_id", "user_id", "session_id", "output_id", "metadata",
    "last_error",
)  # fmt: skip


# What the API returns for a ticket: redacted text only, never the raw one.
class FeedbackPublic(FeedbackBase, _Output):
    # Redacted on read, so without the length limits of what is sent: "<PERSON>" outgrows "Jo".
    source: str
    external_id: str
    customer_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    output_id: str | None = None
    id: int
    text: str | None = Field(default=None, description="Redacted text, once processed.")
    meta: dict[str, Any] | None = Field(default=None, alias="metadata")
    received_at: datetime
    processed_at: datetime | None = None
    status: str
    last_error: str | None = None
    issue_ids: list[int] = Field(default_factory=list)
    category: str | None = None
    category_confidence: float | None = None
    category_evidence: list[dict[str, Any]] = Field(default_factory=list)


MAX_BATCH_ITEMS = 1000

# The largest id or offset a client may send: the largest integer SQLite and PostgreSQL bind.
MAX_ID = 2**63 - 1
# An id as a client sends it, in a body, a path or a query.
RowId = Annotated[int, PydanticField(ge=1, le=MAX_ID)]


# A batch: {"items": [...]} with 1 to 1,000 tickets. Items are validated one by one after
# parsing (api/routes/feedback.py), so one invalid item is answered as such and never blocks
# the rest; each has the shape of a single ticket.
class FeedbackBatchCreate(SQLModel):
    model_config = SQLModelConfig(extra="allow")

    items: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Tickets, each with the shape of a single POST's body.",
    )


def _single_or_batch(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


# A POST body: one item, or {"items": [...]}; the tags never show in an error's field
# (api/errors.py drops them).
FeedbackPayload = Annotated[
    Annotated[FeedbackCreate, Tag("single")] | Annotated[FeedbackBatchCreate, Tag("batch")],
    Discriminator(_single_or_batch),
]


class FeedbacksPublic(SQLModel):
    items: list[FeedbackPublic]
    total: int


# A field of a request that the server did not read: a typo, most often (`customer` for
# `customer_id`). Listed in the answer; `?strict=true` makes them a 422 instead.
class FieldWarning(SQLModel):
    field: str
    message: str


def unknown_field_warnings(item: SQLModel, *, prefix: str = "") -> list[FieldWarning]:
    """One warning per field of ``item`` that its model does not have, with a guess at the
    field meant."""
    known = [f.alias or name for name, f in type(item).model_fields.items()]
    warnings = []
    for name in item.model_extra or {}:
        guess = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        warnings.append(FieldWarning(field=prefix + name, message=f"Unknown field, ignored{hint}"))
    return warnings


def refuse_if_strict(strict: bool, warnings: list[FieldWarning]) -> None:
    """With ``?strict=true``, unknown fields are an error and nothing is stored."""
    if strict and warnings:
        names = ", ".join(w.field for w in warnings)
        raise UnknownFieldsError(
            f"Unknown fields: {names}. Fix or remove them, or send without ?strict=true to "
            "store the rest and get them back as warnings.",
            details=[w.model_dump() for w in warnings],
        )


# The answer to an ingestion: one per item, in the order sent.
class FeedbackAccepted(SQLModel):
    id: int
    source: str
    external_id: str
    status: str
    duplicate: bool = Field(description="True when this item was already stored.")
    warnings: list[FieldWarning] = Field(default_factory=list)


class ItemResult(StrEnum):
    stored = "stored"
    duplicate = "duplicate"
    conflict = "conflict"
    invalid = "invalid"


# One batch item's answer: what became of it, at its index in the request.
class FeedbackItemResult(SQLModel):
    index: int
    result: ItemResult
    id: int | None = Field(
        default=None,
        description="The ticket's id; for a conflict, the stored ticket's, when it was stored "
        "before this request.",
    )
    source: str | None = None
    external_id: str | None = None
    status: str | None = None
    duplicate: bool = Field(default=False, description="Same as result == duplicate.")
    fields: list[str] = Field(
        default_factory=list, description="A conflict's fields that differ from the stored ticket."
    )
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="Why an invalid item was refused, field by field."
    )
    warnings: list[FieldWarning] = Field(default_factory=list)


class FeedbackBatchAccepted(SQLModel):
    items: list[FeedbackItemResult]
    warnings: list[FieldWarning] = Field(
        default_factory=list, description="Unknown fields of the batch object itself."
    )


# What a webhook from a support tool stored: none, one or several tickets (a new ticket, a new
# comment), or why the event was skipped (an agent's reply, an event type we do not read).
class WebhookAccepted(SQLModel):
    items: list[FeedbackAccepted]
    warnings: list[FieldWarning] = Field(default_factory=list)
    ignored: str | None = Field(default=None, description="Why nothing was stored, if so.")


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

    @field_validator("title", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Absent means "leave it"; an explicit null would erase a field that must have a value.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value.")
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
    model_output_id: int = Field(foreign_key="model_output.id", index=True)
    method: str = Field(max_length=16, description="explicit, user, session or content")
    confidence: float
    created_at: datetime = Field(default_factory=utcnow, sa_type=_tz())


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
