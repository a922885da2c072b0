"""Tickets in (ingest scope) and out (read scope)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import Discriminator, Tag
from sqlmodel import Session

from api.deps import IngestKey, ReadKey, RedactDep, SessionDep, WriteSessionDep
from api.errors import API_ERRORS
from triage import store
from triage.models import (
    FEEDBACK_REDACTED_ON_READ,
    MAX_BATCH_ITEMS,
    MAX_ID,
    Feedback,
    FeedbackAccepted,
    FeedbackBatchAccepted,
    FeedbackBatchCreate,
    FeedbackCreate,
    FeedbackPublic,
    FeedbacksPublic,
    FeedbackStatus,
    refuse_if_strict,
    unknown_field_warnings,
)
from triage.redaction import RedactRecords

# PostgreSQL cannot compare text with NUL in it; refuse it here like in bodies.
NO_NUL = r"^[^\x00]*$"

router = APIRouter(prefix="/v1/feedback", tags=["feedback"], responses=API_ERRORS)


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


FeedbackPayload = Annotated[
    Annotated[FeedbackCreate, Tag("single")] | Annotated[FeedbackBatchCreate, Tag("batch")],
    Discriminator(_shape),
]


@router.post(
    "",
    status_code=202,
    response_model=FeedbackAccepted | FeedbackBatchAccepted,
    summary="Store one ticket, or a batch of up to 1,000",
    description=(
        "Idempotent per (source, external_id): a retry answers with the same id and stores "
        "nothing new; the same key with a different text is a 409. Processing happens later, "
        f'in the worker. A batch is `{{"items": [...]}}` with at most {MAX_BATCH_ITEMS} items. '
        "Fields the API does not know are listed in `warnings`; with `?strict=true` they are a "
        "422 `unknown_fields` and nothing is stored. Numeric ids are stored as text, and an "
        "HTML body as its plain text."
    ),
)
def create_feedback(
    payload: Annotated[FeedbackPayload, Body()],
    session: WriteSessionDep,
    _key: IngestKey,
    strict: Annotated[bool, Query(description="Refuse unknown fields with a 422.")] = False,
) -> FeedbackAccepted | FeedbackBatchAccepted:
    return accept_feedback(session, payload, strict=strict)


def accept_feedback(
    session: Session, payload: FeedbackCreate | FeedbackBatchCreate, *, strict: bool
) -> FeedbackAccepted | FeedbackBatchAccepted:
    """Store one ticket or a batch and answer with each item's unknown fields; shared with the
    generic signed webhook (routes/integrations.py), which takes the same body."""
    batch = isinstance(payload, FeedbackBatchCreate)
    items = payload.items if isinstance(payload, FeedbackBatchCreate) else [payload]
    per_item = [
        unknown_field_warnings(item, prefix=f"items.{i}." if batch else "")
        for i, item in enumerate(items)
    ]
    outer = unknown_field_warnings(payload) if batch else []
    refuse_if_strict(strict, outer + [w for item in per_item for w in item])
    accepted = store.add_feedback(session, items=items)
    session.commit()
    for answer, warnings in zip(accepted, per_item, strict=True):
        answer.warnings = warnings
    if isinstance(payload, FeedbackBatchCreate):
        return FeedbackBatchAccepted(items=accepted, warnings=outer)
    return accepted[0]


def to_public(
    feedbacks: Sequence[Feedback], issue_ids: dict[int, list[int]], redact: RedactRecords
) -> list[FeedbackPublic]:
    """The tickets as a client reads them: the redacted text, and every other string that came
    from outside passed through the redactor, the whole page in one batch."""
    rows = [
        {
            **feedback.model_dump(exclude={"text", "meta"}),
            "text": feedback.redacted_text,
            "metadata": feedback.meta,
            "issue_ids": issue_ids.get(feedback.id, []),  # type: ignore[arg-type]
        }
        for feedback in feedbacks
    ]
    shown = redact([{name: row[name] for name in FEEDBACK_REDACTED_ON_READ} for row in rows])
    return [
        FeedbackPublic.model_validate({**row, **fields})
        for row, fields in zip(rows, shown, strict=True)
    ]


@router.get("", response_model=FeedbacksPublic, summary="List tickets, oldest first")
def list_feedback(
    session: SessionDep,
    _key: ReadKey,
    redact: RedactDep,
    source: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    status: FeedbackStatus | None = None,
    since: Annotated[datetime | None, Query(description="Received at or after (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> FeedbacksPublic:
    rows, total = store.list_feedback(
        session,
        source=source,
        status=status.value if status else None,
        since=since,
        limit=limit,
        offset=offset,
    )
    issues = store.issue_ids_by_feedback(session, feedback_ids=[row.id for row in rows])  # type: ignore[misc]
    return FeedbacksPublic(items=to_public(rows, issues, redact), total=total)


@router.get("/{feedback_id}", response_model=FeedbackPublic, summary="One ticket and its issues")
def get_feedback(
    feedback_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    _key: ReadKey,
    redact: RedactDep,
) -> FeedbackPublic:
    feedback = store.get_feedback(session, feedback_id=feedback_id)
    issues = store.issue_ids_by_feedback(session, feedback_ids=[feedback_id])
    return to_public([feedback], issues, redact)[0]
