"""What every inbound mapping shares: the tickets one webhook yields, and the small conversions
from vendors' values (numeric ids, empty placeholders, Unix times) to ``FeedbackCreate``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from triage.errors import InvalidInputError
from triage.models import FeedbackCreate, FieldWarning


@dataclass
class Tickets:
    """What one webhook delivery maps to: tickets to store (a new ticket, new comments), fields
    we did not read, or why the delivery holds nothing for us."""

    items: list[FeedbackCreate] = field(default_factory=list)
    warnings: list[FieldWarning] = field(default_factory=list)
    ignored: str | None = None


def ignored(reason: str) -> Tickets:
    return Tickets(ignored=reason)


def as_dict(value: Any) -> dict[str, Any]:
    """A nested object of a vendor payload, or ``{}`` when it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def as_id(value: Any) -> str | None:
    """A vendor id as our text id. Zendesk sends "0" or "" for "no organization", and a
    trigger's placeholder renders empty when the ticket has none."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text in ("", "0", "null") else text


def as_time(value: Any) -> datetime | str | None:
    """Unix seconds (Intercom) or ISO 8601 (Zendesk) as a datetime; anything else is passed on
    for the model to name in its 422."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return value if isinstance(value, str) else None


def join_text(*parts: str | None) -> str:
    """Subject and body as one text, the subject as its own first paragraph."""
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def build(record: dict[str, Any], *, what: str) -> FeedbackCreate:
    """Validate one mapped ticket; a vendor payload that cannot make one is a 422 naming it."""
    try:
        return FeedbackCreate.model_validate(record)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'ticket'}: {err['msg']}"
            for err in e.errors()
        )
        raise InvalidInputError(
            f"{what} cannot be stored as feedback: {problems}.",
            details=[{"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
                     for err in e.errors()],
        ) from e  # fmt: skip
