"""Reading the JSON other stages stored (trends, lineage, evidence), which may hold anything."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from triage.models import as_utc


def as_moment(value: Any) -> datetime | None:
    """A stored time (a datetime or an ISO string) in UTC; None when it is neither."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def as_number(value: Any) -> float | None:
    """A stored finite number; None for booleans, NaN, infinities and anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def between(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end
