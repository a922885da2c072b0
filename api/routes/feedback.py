"""Tickets in (ingest scope) and out (read scope)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import IngestKey, IngestSessionDep, ReadKey, RedactDep, SessionDep, SettingsDep
from api.errors import API_ERRORS, ApiError, validation_details
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
    FeedbackItemResult,
    FeedbackPayload,
    FeedbackPublic,
    FeedbacksPublic,
    FeedbackStatus,
    FieldWarning,
    ItemResult,
    UtcDateTime,
    refuse_if_strict,
    unknown_field_warnings,
)
from triage.redaction import RedactRecords

# PostgreSQL cannot compare text with NUL in it; refuse it here like in bodies.
NO_NUL = r"^[^\x00]*$"

router = APIRouter(prefix="/v1/feedback", tags=["feedback"], responses=API_ERRORS)


@router.post(
    "",
    status_code=202,
    response_model=FeedbackAccepted | FeedbackBatchAccepted,
    summary="Store one ticket, or a batch of up to 1,000",
    description=(
        "Idempotent per (source, external_id): a retry answers with the same id and stores "
        "nothing new; the same key with another text, `customer_id`, `metadata`, `created_at` "
        "(or any other field) is a 409 naming the fields. Processing happens later, in the "
        f'worker. A batch is `{{"items": [...]}}` with at most {MAX_BATCH_ITEMS} items and '
        "answers one result per item, in order: `stored`, `duplicate`, `conflict` (with "
        "`fields`) or `invalid` (with `errors`), each with its `index`; one bad item never "
        "blocks the rest. `metadata` is at most `TRIAGE_MAX_METADATA_BYTES` serialised. A key "
        "bound to sources writes only those. Fields the API does not know are listed in "
        "`warnings`; with `?strict=true` they are a 422 `unknown_fields` and nothing is stored. "
        "Numeric ids are stored as text, and an HTML body as its plain text."
    ),
)
def create_feedback(
    payload: Annotated[FeedbackPayload, Body()],
    session: IngestSessionDep,
    key: IngestKey,
    settings: SettingsDep,
    strict: Annotated[bool, Query(description="Refuse unknown fields with a 422.")] = False,
) -> FeedbackAccepted | FeedbackBatchAccepted:
    limit = settings.max_metadata_bytes
    return accept_feedback(
        session, payload, strict=strict, max_metadata_bytes=limit, sources=key.sources
    )


def accept_feedback(
    session: Session,
    payload: FeedbackCreate | FeedbackBatchCreate,
    *,
    strict: bool,
    max_metadata_bytes: int,
    sources: Collection[str] | None = None,
) -> FeedbackAccepted | FeedbackBatchAccepted:
    """Store one ticket or a batch and answer with each item's unknown fields; shared with the
    generic signed webhook (routes/integrations.py), which takes the same body. ``sources``:
    the only sources the caller may write (None: any)."""
    if isinstance(payload, FeedbackBatchCreate):
        limit = max_metadata_bytes
        return _accept_batch(
            session, payload, strict=strict, max_metadata_bytes=limit, sources=sources
        )
    warnings = unknown_field_warnings(payload)
    refuse_if_strict(strict, warnings)
    if sources is not None and payload.source not in sources:
        raise ApiError(403, "forbidden", _source_message(payload.source, sources))
    if problem := _metadata_problem(payload, max_metadata_bytes, location=["body", "metadata"]):
        raise ApiError(422, "invalid_fields", "Invalid or missing fields: metadata.", [problem])
    (result,) = store.add_feedback_items(session, items=[payload])
    if result.result is ItemResult.conflict:
        raise store.conflict_error([result], stored_nothing=True)
    session.commit()
    shown = result.model_dump(include={"id", "source", "external_id", "status", "duplicate"})
    return FeedbackAccepted.model_validate({**shown, "warnings": warnings})


def _accept_batch(
    session: Session,
    payload: FeedbackBatchCreate,
    *,
    strict: bool,
    max_metadata_bytes: int,
    sources: Collection[str] | None,
) -> FeedbackBatchAccepted:
    """Each item validated, checked and stored on its own merits; the answers in order."""
    answers: dict[int, FeedbackItemResult] = {}
    valid: list[tuple[int, FeedbackCreate, list[FieldWarning]]] = []
    for index, raw in enumerate(payload.items):
        try:
            item = FeedbackCreate.model_validate(raw)
        except ValidationError as e:
            errors = [{**err, "loc": ("body", "items", index, *err["loc"])} for err in e.errors()]
            answers[index] = _invalid(index, raw, validation_details(errors))
            continue
        valid.append((index, item, unknown_field_warnings(item, prefix=f"items.{index}.")))
    outer = unknown_field_warnings(payload)
    refuse_if_strict(strict, outer + [w for _, _, warnings in valid for w in warnings])

    storable = []
    for index, item, warnings in valid:
        location = ["body", "items", index]
        problem: dict[str, Any] | None
        if sources is not None and item.source not in sources:
            message = _source_message(item.source, sources)
            problem = {"field": f"items.{index}.source", "location": [*location, "source"],
                       "message": message, "type": "source_not_allowed"}  # fmt: skip
        else:
            problem = _metadata_problem(item, max_metadata_bytes, location=[*location, "metadata"])
        if problem:
            answers[index] = _invalid(index, raw=item.model_dump(), errors=[problem])
        else:
            storable.append((index, item, warnings))
    results = store.add_feedback_items(session, items=[item for _, item, _ in storable])
    for (index, _, warnings), result in zip(storable, results, strict=True):
        answers[index] = result.model_copy(update={"index": index, "warnings": warnings})
    session.commit()
    return FeedbackBatchAccepted(items=[answers[i] for i in sorted(answers)], warnings=outer)


def _invalid(index: int, raw: Any, errors: list[dict[str, Any]]) -> FeedbackItemResult:
    # Echo the item's key when it has one, so a client can match the answer without the index.
    def text(name: str) -> str | None:
        value = raw.get(name) if isinstance(raw, dict) else None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

    source, external_id = text("source"), text("external_id")
    return FeedbackItemResult(
        index=index,
        result=ItemResult.invalid,
        source=source,
        external_id=external_id,
        errors=errors,
    )


def _source_message(source: str, sources: Collection[str]) -> str:
    allowed = ", ".join(sorted(sources)) or "none"
    return (
        f"This key may write only the sources {allowed}, not '{source}'; use a key made with "
        f"`triage keys create --scope ingest --source {source}`."
    )


def _metadata_problem(
    item: FeedbackCreate, max_bytes: int, *, location: list[Any]
) -> dict[str, Any] | None:
    """A field error when the metadata is over the limit: every read of the ticket carries it,
    so an unbounded one makes every listing that holds it unbounded too."""
    if item.meta is None:
        return None
    size = len(json.dumps(item.meta, ensure_ascii=False, separators=(",", ":")).encode())
    if size <= max_bytes:
        return None
    return {
        "field": ".".join(str(p) for p in location[1:]),
        "location": location,
        "message": f"is {size} bytes as JSON, over the limit of {max_bytes} "
        "(TRIAGE_MAX_METADATA_BYTES); keep large data in the source and send its id or URL.",
        "type": "metadata_too_large",
    }


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
    since: Annotated[
        UtcDateTime | None,
        Query(description="Received at or after (ISO 8601; without an offset, UTC)."),
    ] = None,
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
