"""ISO weeks in UTC, Monday 00:00 inclusive to the next Monday 00:00 exclusive, and when the
schedule makes a week's digest."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from triage.errors import InvalidInputError
from triage.models import as_utc, utcnow

WEEK = timedelta(days=7)
# ASCII digits only: ``\d`` also matches other scripts' digits ("٢٠٢٦-W47", "2026-W４７"), which
# int() reads as 2026 and 47, so one week had several names and several stored digests.
_WEEK_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")
# Weeks a digest can be made for (parse_digest_week). Outside these, a week or the weeks its
# charts look back on leave datetime's range (year 1 to 9999): an OverflowError, which was a
# 500 for 0001-W01..0001-W08 and 9999-W52. Before the Unix epoch nothing was ever logged.
FIRST_YEAR, LAST_YEAR = 1970, 9998


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
    try:
        return start, start + WEEK
    except OverflowError as e:  # 9999-W52 ends in year 10000
        raise _out_of_range(week) from e


def parse_digest_week(week: str) -> tuple[datetime, datetime]:
    """``parse_week`` for a week a person or a client asks the digest of: from FIRST_YEAR-W01 to
    LAST_YEAR-W52, so that the weeks its charts look back on are representable too."""
    start, end = parse_week(week)
    if not FIRST_YEAR <= int(week[:4]) <= LAST_YEAR:
        raise _out_of_range(week)
    return start, end


def _out_of_range(week: str) -> InvalidInputError:
    return InvalidInputError(
        f"{week!r} is out of range; digests cover {FIRST_YEAR}-W01 to {LAST_YEAR}-W52.",
        details={"field": "week"},
    )


def week_of(moment: datetime) -> str:
    """The ISO week (in UTC) a moment falls in; a time in another zone is converted first."""
    year, number, _ = as_utc(moment).isocalendar()
    return f"{year}-W{number:02d}"


def shift_week(week: str, weeks: int) -> str:
    try:
        return week_of(parse_week(week)[0] + weeks * WEEK)
    except OverflowError as e:  # a window running past year 1 or 9999
        raise _out_of_range(week) from e


def last_complete_week(now: datetime | None = None) -> str:
    return week_of(as_utc(now or utcnow()) - WEEK)


def due_at(week: str, *, weekday: int, hour: int) -> datetime:
    """When the schedule makes ``week``'s digest: on ``weekday`` at ``hour`` after it ends."""
    return parse_week(week)[1] + timedelta(days=weekday, hours=hour)
