"""What a digest holds: plain dataclasses that ``collect`` fills and the renderers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from triage.models import Category

UNCATEGORISED = "uncategorised"
CATEGORIES = (*(c.value for c in Category), UNCATEGORISED)
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale.
CATEGORY_COLOURS = {
    "ui": "#0072B2",
    "data": "#E69F00",
    "model": "#D55E00",
    "expectation": "#009E73",
    UNCATEGORISED: "#8C8C8C",
}


@dataclass(frozen=True)
class Figure:
    """One headline number for the week, next to the week before (None: not known)."""

    name: str
    label: str
    this_week: float | None
    last_week: float | None
    share: bool = False  # a fraction in [0, 1] rather than a count

    @property
    def delta(self) -> float | None:
        if self.this_week is None or self.last_week is None:
            return None
        return self.this_week - self.last_week


@dataclass(frozen=True)
class IssueRef:
    id: int
    title: str
    category: str | None
    confidence: float | None
    status: str
    weekly: list[int]  # tickets per week, oldest first; the last is the digest's week
    customers: int
    size: int

    @property
    def this_week(self) -> int:
        return self.weekly[-1] if self.weekly else 0

    @property
    def category_key(self) -> str:
        return self.category if self.category in CATEGORY_COLOURS else UNCATEGORISED


@dataclass(frozen=True)
class LinkedExample:
    output_id: str
    model: str
    model_version: str | None
    input: str
    output: str
    output_confidence: float | None
    link_method: str
    link_confidence: float


@dataclass(frozen=True)
class TopIssue:
    issue: IssueRef
    priority: float
    breakdown: list[tuple[str, float]]  # weighted components, largest first; they sum to priority
    evidence: list[tuple[str, str]]  # (signal, reason)
    quotes: list[str]
    model_versions: list[str]
    examples: list[LinkedExample]
    examples_note: str = ""  # how the examples were chosen, e.g. "the lowest confidence first"
    ticket_url: str | None = None  # the issue's ticket in a tracker (``external_url``), http(s)


@dataclass(frozen=True)
class CategoryGroup:
    category: str
    issues: list[TopIssue]


@dataclass(frozen=True)
class NewIssue:
    issue: IssueRef
    first_seen: datetime


@dataclass(frozen=True)
class Change:
    """An issue's trend as the ranker computed it (``Issue.trend``)."""

    issue: IssueRef
    this_week: int
    trailing_mean: float
    change: float
    spiking: bool
    p_value: float | None


@dataclass(frozen=True)
class Regression:
    issue: IssueRef
    regressed_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Correction:
    issue_id: int
    title: str
    at: datetime
    actor: str
    action: str
    description: str


@dataclass(frozen=True)
class CategoryMix:
    weeks: list[str]
    counts: dict[str, list[int]]  # category -> statements per week, categories with any only

    def totals(self) -> list[int]:
        return [sum(series[i] for series in self.counts.values()) for i in range(len(self.weeks))]


@dataclass(frozen=True)
class VersionRow:
    model: str
    version: str | None
    traffic: int | None  # outputs logged this week; None: none of this version
    traffic_share: float | None
    complaints: int
    complaint_share: float | None
    lift: float | None  # complaint share / traffic share
    flagged: bool  # enough complaints, far above its traffic share


@dataclass(frozen=True)
class DigestData:
    week: str
    start: datetime
    end: datetime
    generated_at: datetime
    weeks: list[str]  # the chart window, oldest first, ending with ``week``
    headline: list[Figure]
    top: list[CategoryGroup]
    new: list[NewIssue]
    changes: list[Change]
    regressions: list[Regression]
    corrections: list[Correction]
    category_mix: CategoryMix
    versions: list[VersionRow]
    notes: list[str] = field(default_factory=list)

    def figure(self, name: str) -> Figure:
        return next(f for f in self.headline if f.name == name)
