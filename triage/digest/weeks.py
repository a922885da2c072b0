"""ISO weeks in UTC, Monday 00:00 inclusive to the next Monday 00:00 exclusive, and when the
schedule makes a week's digest."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from triage.errors import InvalidInputError
from triage.models import as_utc, utcnow

WEEK = timedelta(days=7)
_WEEK_RE = re.compile(r"(\d{4})-W(\d{2})")


def parse_week(week: str) -> tuple[datetime, datetime]:
    """``"2026-W47"`` -> (Monday 00:00 UTC, the next Monday 00:00 UTC)."""
    match = _WEEK_RE.fullmatch(week or "")
    if match is None:
        raise InvalidInputError(
            f"{week!r} is not an ISO week; write it like 2026-W47.", details={"field": "week"}
        )
    year, number = int(match[1]), int(match[2])
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as e:
        raise InvalidInputError(
            f"{year} has no ISO week {number}; weeks run from 1 to 52 or 53.",
            details={"field": "week"},
        ) from e
    start = datetime.combine(monday, clock(), UTC)
    return start, start + WEEK


def week_of(moment: datetime) -> str:
    """The ISO week (in UTC) a moment falls in; a time in another zone is converted first."""
    year, number, _ = as_utc(moment).isocalendar()
    return f"{year}-W{number:02d}"


def shift_week(week: str, weeks: int) -> str:
    return week_of(parse_week(week)[0] + weeks * WEEK)


def last_complete_week(now: datetime | None = None) -> str:
    return week_of(as_utc(now or utcnow()) - WEEK)


def due_at(week: str, *, weekday: int, hour: int) -> datetime:
    """When the schedule makes ``week``'s digest: on ``weekday`` at ``hour`` after it ends."""
    return parse_week(week)[1] + timedelta(days=weekday, hours=hour)
