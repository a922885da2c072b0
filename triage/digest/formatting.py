"""How figures, changes and dates read in every rendering (HTML, Markdown, the webhook's text);
"—" stands for a figure that is not known."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from triage.digest.model import Figure


def pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0%}"


def delta(figure: Figure) -> str:
    if figure.last_week is None:
        return "no earlier figure"
    if figure.share:
        points = (figure.delta or 0.0) * 100
        return f"{points:+.0f} pts vs {pct(figure.last_week)}"
    if figure.last_week == 0:
        return f"vs {count(figure.last_week)} the week before"
    change = (figure.delta or 0.0) / figure.last_week
    return f"{change:+.0%} vs {count(figure.last_week)}"


def day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%d %b %Y}"


def long_day(value: datetime) -> str:
    return f"{value:%a %d %b %Y}"


def moment(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%d %b %Y %H:%M} UTC"


def figure_value(figure: Figure) -> str:
    return pct(figure.this_week) if figure.share else count(figure.this_week)


# The templates' filters, by the names both templates use.
FILTERS: dict[str, Callable[..., Any]] = {
    "pct": pct,
    "count": count,
    "signed_pct": signed_pct,
    "delta": delta,
    "day": day,
    "long_day": long_day,
    "moment": moment,
    "figure_value": figure_value,
}
