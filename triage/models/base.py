"""What every table and request shape shares: time, the enums, input checks, the base
classes, ids, and unknown-field warnings."""

from __future__ import annotations

import difflib
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, overload
from urllib.parse import urlsplit

from pydantic import AfterValidator, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import DateTime
from sqlmodel import SQLModel
from sqlmodel.main import SQLModelConfig  # pydantic's ConfigDict, as SQLModel types it

from triage.errors import UnknownFieldsError


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
    # Folded into another issue (``merged_into`` names it); set only by a merge.
    merged = "merged"


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


MAX_BATCH_ITEMS = 1000

# The largest id or offset a client may send: the largest integer SQLite and PostgreSQL bind.
MAX_ID = 2**63 - 1
# An id as a client sends it, in a body, a path or a query.
RowId = Annotated[int, PydanticField(ge=1, le=MAX_ID)]


def _to_utc(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError as e:  # 9999-12-31T23:00:00-05:00: past the last UTC instant
        raise ValueError("is out of range once converted to UTC.") from e


def http_url(value: str | None) -> str | None:
    """A link a client gives us to show (``external_url``): http or https only.

    Shown as a link in the web app, the digest and the CLI, a ``javascript:`` URL would run in
    the reader's browser, and ``file:`` or ``data:`` ones open what the sender chose. No spaces
    or control characters either: browsers drop those, so ``java\tscript:`` would be
    ``javascript:``. Empty or null clears the link.
    """
    if not value:
        return value
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must be an http or https URL without spaces or control characters.")
    try:
        parts = urlsplit(value)
    except ValueError as e:  # e.g. an unbalanced [ in the host
        raise ValueError(f"is not a valid URL ({e}).") from e
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http:// or https:// URL with a host, e.g. "
            "https://tracker.example.com/T-12; other schemes (javascript:, file:, data:, ...) "
            "are refused."
        )
    return value


# A moment a client sends in a query (``since=``), normalised to UTC where it enters: SQLite
# keeps datetimes as text without a zone, so an offset left on the value was ignored in the
# comparison (``since=2026-12-06T02:00:00+03:00`` read as 02:00 UTC). Without a zone it is UTC.
UtcDateTime = Annotated[datetime, AfterValidator(_to_utc)]


def _single_or_batch(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


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
