"""Feedback: one ticket, review or survey answer, as sent, stored and shown."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Discriminator, Tag, computed_field, field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig  # pydantic's ConfigDict, as SQLModel types it

from triage.integrations.html import to_text
from triage.models.base import (
    MAX_BATCH_ITEMS,
    FeedbackStatus,
    FieldWarning,
    _Input,
    _Output,
    _single_or_batch,
    _tz,
    utcnow,
)

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
    # What that decision was made from (a digest) and its probabilities: a refresh keeps the
    # decision of a ticket whose inputs did not change (``pipeline.tickets``).
    category_key: str | None = Field(default=None, max_length=64)
    category_probabilities: dict[str, float] | None = Field(default=None, sa_type=JSON)


# What a client sent besides the text, stored as sent (linking needs the real ids), and the
# error, which may quote it: every read passes them through the redactor (triage.redaction).
# Evidence is built from redacted texts only (tickets, and examples since `triage train`).
FEEDBACK_REDACTED_ON_READ = (
    "source", "external_id", "customer_id", "user_id", "session_id", "output_id", "metadata",
    "last_error",
)  # fmt: skip


# The evidence line a ticket's decision starts with when its category is a guess
# (``triage.categorize.abstain``): what ``category_uncertain`` reads.
UNCERTAIN_SIGNAL = "uncertain"


def is_uncertain(evidence: list[dict[str, Any]] | None) -> bool:
    """Whether a stored decision's evidence says its category is uncertain."""
    return any(line.get("signal") == UNCERTAIN_SIGNAL for line in evidence or [])


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

    @computed_field(  # type: ignore[prop-decorator]
        description="The category is a guess: its confidence is below the one under which "
        "decisions on unseen products were more often wrong than right; the first evidence "
        "line says so."
    )
    @property
    def category_uncertain(self) -> bool:
        return is_uncertain(self.category_evidence)


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


# A POST body: one item, or {"items": [...]}; the tags never show in an error's field
# (api/errors.py drops them).
FeedbackPayload = Annotated[
    Annotated[FeedbackCreate, Tag("single")] | Annotated[FeedbackBatchCreate, Tag("batch")],
    Discriminator(_single_or_batch),
]


class FeedbacksPublic(SQLModel):
    items: list[FeedbackPublic]
    total: int


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
