"""Stage "digest": the weekly page a product manager reads on Monday.

``collect`` reads one ISO week out of the database (through ``store``) into plain dataclasses;
``render_html`` and ``render_markdown`` turn those into one self-contained HTML file or text to
paste into chat, a wiki or an e-mail; ``generate`` stores the result, so last month's digest
reads the same next year. ``deliver_webhook`` and ``maybe_generate_digest`` are the worker's
schedule.

Weeks are ISO weeks in UTC, Monday 00:00 inclusive to the next Monday 00:00 exclusive. A ticket
belongs to the week its source says it was written (``created_at``), or to the week we received
it when the source sent no time. Customer words come only from redacted text (units and issue
quotes), never from a ticket's raw text.
"""

from __future__ import annotations

import html
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jinja2
from sqlalchemy import Engine
from sqlmodel import Session

from triage import db, store
from triage.config import Settings
from triage.errors import DigestDeliveryError, InvalidInputError
from triage.models import AuditLog, Category, Digest, Issue, IssueStatus, as_utc, utcnow

logger = logging.getLogger("triage.digest")

WEEK = timedelta(days=7)
MIN = datetime.min.replace(tzinfo=UTC)
FORMATS = ("html", "md")
TEMPLATES = Path(__file__).parent / "templates"
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
# Top issues are the ones still needing work; resolved and ignored ones appear elsewhere.
ACTIVE = {IssueStatus.open.value, IssueStatus.acknowledged.value, IssueStatus.regressed.value}
_WEEK_RE = re.compile(r"(\d{4})-W(\d{2})")


# --- weeks -------------------------------------------------------------------------------------


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
    year, number, _ = as_utc(moment).isocalendar()  # type: ignore[union-attr]
    return f"{year}-W{number:02d}"


def shift_week(week: str, weeks: int) -> str:
    return week_of(parse_week(week)[0] + weeks * WEEK)


def last_complete_week(now: datetime | None = None) -> str:
    return week_of(as_utc(now or utcnow()) - WEEK)  # type: ignore[operator]


def next_due(now: datetime, *, weekday: int = 0, hour: int = 8) -> datetime:
    """The first scheduled moment (``weekday`` 0 = Monday, ``hour`` UTC) after ``now``."""
    now = as_utc(now)  # type: ignore[assignment]
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), clock(), UTC)
    due = monday + timedelta(days=weekday, hours=hour)
    return due if due > now else due + WEEK


def due_at(week: str, *, weekday: int, hour: int) -> datetime:
    """When the schedule makes ``week``'s digest: on ``weekday`` at ``hour`` after it ends."""
    return parse_week(week)[1] + timedelta(days=weekday, hours=hour)


# --- what a digest holds -----------------------------------------------------------------------


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
    traffic: int
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


# --- collecting --------------------------------------------------------------------------------


def _at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _between(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def shorten(text: str | None, limit: int) -> str:
    """One line, at most ``limit`` characters, cut at a word when one is near."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _title(issue: Issue) -> str:
    return issue.title or f"Issue {issue.id} (untitled)"


def _status_changes(audit: Sequence[AuditLog], status: str) -> dict[int, list[datetime]]:
    """When a person set each issue to ``status``."""
    found: dict[int, list[datetime]] = {}
    for entry in audit:
        before, after = entry.before or {}, entry.after or {}
        if entry.action == "issue.update" and after.get("status") == status != before.get("status"):
            found.setdefault(int(entry.target_id), []).append(as_utc(entry.at))  # type: ignore[arg-type]
    return found


def _lineage_times(issue: Issue, event: str) -> list[datetime]:
    times = [_at(record.get("at")) for record in issue.lineage if record.get("event") == event]
    return [t for t in times if t is not None]


def _describe(entry: AuditLog, titles: dict[int, str]) -> str:
    before, after = entry.before or {}, entry.after or {}
    if entry.action == "issue.update":
        parts = []
        for name in ("title", "category", "status", "assignee", "external_url"):
            if before.get(name) != after.get(name):
                old, new = before.get(name), after.get(name)
                if name == "title":
                    parts.append(f"renamed from “{old or ''}” to “{new or ''}”")
                else:
                    parts.append(f"{name} {old or '—'} → {new or '—'}")
        return "; ".join(parts) or "edited"
    if entry.action == "issue.merge":
        into = after.get("merged_into")
        return f"merged into #{into} {titles.get(into, '')}".rstrip()
    if entry.action == "issue.move_units":
        count = len(after.get("unit_ids") or [])
        return f"{count} statement{'s' if count != 1 else ''} moved in by hand"
    return entry.action


def _versions(issue: Issue) -> list[str]:
    """The issue's model versions as the linker reported them, significant ones first."""
    rows = [row for row in issue.model_versions if isinstance(row, dict)]
    rows.sort(key=lambda row: not row.get("significant"))
    described = []
    for row in rows[:3]:
        name = row.get("value") or row.get("model_version") or row.get("version")
        if not name:
            continue
        linked, traffic = _number(row.get("linked_share")), _number(row.get("traffic_share"))
        if linked is not None and traffic is not None:
            described.append(f"{name}: {linked:.0%} of linked outputs vs {traffic:.0%} of traffic")
        else:
            described.append(str(name))
    return described


@dataclass
class _Issues:
    """The live (not merged) issues with what the sections ask of them, for any period."""

    issues: dict[int, Issue]
    refs: dict[int, IssueRef]
    first_seen: dict[int, datetime]
    audit: list[AuditLog]

    def new_in(self, start: datetime, end: datetime) -> list[int]:
        """Issues whose earliest ticket was written in the period."""
        return [i for i in self.issues if _between(self.first_seen.get(i), start, end)]

    def resolved_in(self, start: datetime, end: datetime) -> set[int]:
        """Marked resolved by a person in the period (audit log, or ``resolved_at``)."""
        by_person = _status_changes(self.audit, IssueStatus.resolved.value)
        return {
            i
            for i, issue in self.issues.items()
            if _between(as_utc(issue.resolved_at), start, end)
            or any(_between(t, start, end) for t in by_person.get(i, []))
        }

    def regressed_in(self, start: datetime, end: datetime) -> dict[int, datetime]:
        """Resolved issues that took in new feedback (lineage) or that a person reopened as
        regressed, with the latest such moment in the period."""
        by_person = _status_changes(self.audit, IssueStatus.regressed.value)
        found = {}
        for i, issue in self.issues.items():
            times = _lineage_times(issue, "regressed") + by_person.get(i, [])
            inside = [t for t in times if _between(t, start, end)]
            if inside:
                found[i] = max(inside)
        return found


def collect(
    session: Session, *, week: str, settings: Settings, now: datetime | None = None
) -> DigestData:
    """Everything the digest of ``week`` shows, read from the database."""
    start, end = parse_week(week)
    now = as_utc(now) if now else utcnow()
    weeks = [shift_week(week, i - settings.digest_weeks + 1) for i in range(settings.digest_weeks)]
    bounds = [parse_week(w) for w in weeks]

    volumes = [store.digest_issue_volumes(session, start=s, end=e) for s, e in bounds]
    everything = {int(issue.id): issue for issue in store.digest_issues(session)}  # type: ignore[arg-type]
    titles = {i: _title(issue) for i, issue in everything.items()}
    live = {i: issue for i, issue in everything.items() if issue.merged_into is None}
    known = _Issues(
        issues=live,
        refs={
            i: IssueRef(
                id=i,
                title=titles[i],
                category=issue.category,
                confidence=issue.category_confidence,
                status=issue.status,
                weekly=[counts.get(i, 0) for counts in volumes],
                customers=issue.customers,
                size=issue.size,
            )
            for i, issue in live.items()
        },
        first_seen={k: as_utc(v) for k, v in store.digest_issue_first_seen(session).items()},  # type: ignore[misc]
        audit=store.digest_audit_entries(session, start=start - WEEK, end=end),
    )
    new = sorted(
        (NewIssue(known.refs[i], known.first_seen[i]) for i in known.new_in(start, end)),
        key=lambda n: (-n.issue.this_week, n.issue.id),
    )
    regressions = sorted(
        (
            Regression(known.refs[i], at, as_utc(live[i].resolved_at))
            for i, at in known.regressed_in(start, end).items()
        ),
        key=lambda r: r.regressed_at,
    )
    changes = _changes(live, known.refs, settings)
    corrections = [
        Correction(
            issue_id=int(entry.target_id),
            title=titles.get(int(entry.target_id), f"Issue {entry.target_id}"),
            at=as_utc(entry.at),  # type: ignore[arg-type]
            actor=entry.actor,
            action=entry.action,
            description=_describe(entry, titles),
        )
        for entry in known.audit
        if _between(as_utc(entry.at), start, end) and entry.target_id.isdigit()
    ]

    notes = []
    if end > now:
        notes.append(f"Week {week} is not over yet: every figure is partial.")
    elif week != last_complete_week(now):
        notes.append(
            "Growing and spiking come from the ranker's latest run, so for a past week they "
            "describe the week before that run rather than this one."
        )
    return DigestData(
        week=week,
        start=start,
        end=end,
        generated_at=now,
        weeks=weeks,
        headline=_headline(session, week, known, new, changes, regressions, settings),
        top=_top_issues(session, known, start, end, settings),
        new=new,
        changes=changes,
        regressions=regressions,
        corrections=corrections,
        category_mix=_category_mix(session, weeks, bounds),
        versions=_versions_table(session, start, end, settings),
        notes=notes,
    )


def _changes(
    issues: dict[int, Issue], refs: dict[int, IssueRef], settings: Settings
) -> list[Change]:
    """Growing and spiking issues as the ranker judged them (``Issue.trend``), so the digest
    and the issue list never disagree; spikes first, then by change."""
    changes = []
    for i, issue in issues.items():
        trend = issue.trend or {}
        change, this_week = _number(trend.get("change")), _number(trend.get("this_week"))
        if change is None or this_week is None or issue.status == IssueStatus.ignored:
            continue
        spiking = bool(trend.get("spiking"))
        growing = (
            change >= settings.digest_growing_min_change
            and this_week >= settings.digest_growing_min_count
        )
        if spiking or growing:
            changes.append(
                Change(
                    issue=refs[i],
                    this_week=int(this_week),
                    trailing_mean=_number(trend.get("trailing_mean")) or 0.0,
                    change=change,
                    spiking=spiking,
                    p_value=_number(trend.get("p_value")),
                )
            )
    changes.sort(key=lambda c: (not c.spiking, -c.change, c.issue.id))
    return changes


def _headline(
    session: Session,
    week: str,
    known: _Issues,
    new: list[NewIssue],
    changes: list[Change],
    regressions: list[Regression],
    settings: Settings,
) -> list[Figure]:
    start, end = parse_week(week)
    before_start = start - WEEK
    this = store.digest_feedback_figures(session, start=start, end=end)
    before = store.digest_feedback_figures(session, start=before_start, end=start)
    # Trends exist only for the ranker's latest run, so the week before's growing and spiking
    # counts are the ones that week's digest reported, when one was made.
    previous = (store.digest_summary(session, week=shift_week(week, -1)) or {}).get("headline", {})

    def reported(name: str) -> float | None:
        return _number((previous.get(name) or {}).get("this_week"))

    def share(part: str, whole: str, figures: dict[str, int]) -> float | None:
        return figures[part] / figures[whole] if figures[whole] else None

    growing = sum(1 for c in changes if c.change >= settings.digest_growing_min_change)
    return [
        Figure("feedback", "Feedback received", this["tickets"], before["tickets"]),
        Figure("customers", "Distinct customers", this["customers"], before["customers"]),
        Figure("new", "New issues", len(new), len(known.new_in(before_start, start))),
        Figure("growing", "Growing issues", growing, reported("growing")),
        Figure("spiking", "Spiking issues", sum(c.spiking for c in changes), reported("spiking")),
        Figure(
            "resolved",
            "Resolved",
            len(known.resolved_in(start, end)),
            len(known.resolved_in(before_start, start)),
        ),
        Figure(
            "regressed",
            "Regressed",
            len(regressions),
            len(known.regressed_in(before_start, start)),
        ),
        Figure(
            "linked",
            "Linked to model outputs",
            share("linked", "tickets", this),
            share("linked", "tickets", before),
            share=True,
        ),
        Figure(
            "unassigned",
            "Statements in no issue",
            share("unassigned", "units", this),
            share("unassigned", "units", before),
            share=True,
        ),
    ]


_REDACTORS: dict[tuple[Any, ...], Any] = {}


def redact_texts(texts: list[str], settings: Settings) -> list[str]:
    """``texts`` with personal data replaced by placeholders, as tickets are redacted."""
    if not any(texts):
        return texts
    # Imported and built only when a digest shows model outputs: spaCy and presidio take seconds.
    from triage.imports import without_deep_learning

    with without_deep_learning():
        from triage.preprocess import Preprocessor

    key = (settings.preprocess_pii_min_score, tuple(settings.preprocess_phone_regions))
    if key not in _REDACTORS:
        _REDACTORS[key] = Preprocessor.from_settings(settings)
    return _REDACTORS[key].redact(texts)


def _top_issues(
    session: Session, known: _Issues, start: datetime, end: datetime, settings: Settings
) -> list[CategoryGroup]:
    """The highest-priority issues still needing work and known by the week's end, grouped by
    category; groups keep the order of their highest-priority issue."""
    candidates = [
        (i, issue)
        for i, issue in known.issues.items()
        if issue.status in ACTIVE and issue.size > 0 and _between(known.first_seen.get(i), MIN, end)
    ]
    candidates.sort(key=lambda pair: (-pair[1].priority, pair[0]))
    groups: dict[str, list[TopIssue]] = {}
    limit = settings.digest_excerpt_chars
    for i, issue in candidates[: settings.digest_top_issues]:
        quotes = [q for q in issue.quotes if q][: settings.digest_quotes]
        if not quotes and settings.digest_quotes:
            # Quotes are kept by the labeller; until it has run, the newest statements stand in.
            quotes = store.digest_recent_unit_texts(
                session, issue_id=i, end=end, limit=settings.digest_quotes
            )
        linked = (
            store.digest_linked_examples(
                session, issue_id=i, start=start, end=end, limit=settings.digest_examples
            )
            if settings.digest_examples
            else []
        )
        # Model inputs and outputs are stored as the ML service logged them, personal data and
        # all: redacted here, before shortening, so no half an e-mail address survives a cut.
        shown = redact_texts([t for o, _ in linked for t in (o.input or "", o.output or "")],
                             settings)  # fmt: skip
        examples = [
            LinkedExample(
                output_id=output.output_id,
                model=output.model,
                model_version=output.model_version,
                input=shorten(shown[2 * n], limit),
                output=shorten(shown[2 * n + 1], limit),
                output_confidence=output.confidence,
                link_method=link.method,
                link_confidence=link.confidence,
            )
            for n, (output, link) in enumerate(linked)
        ]
        breakdown = [
            (name, value)
            for name, raw in issue.priority_breakdown.items()
            if (value := _number(raw)) is not None
        ]
        breakdown.sort(key=lambda pair: -pair[1])
        evidence = [
            (str(e.get("signal") or ""), str(e["reason"]))
            for e in issue.evidence
            if isinstance(e, dict) and e.get("reason")
        ][: settings.digest_evidence]
        ref = known.refs[i]
        groups.setdefault(ref.category_key, []).append(
            TopIssue(
                issue=ref,
                priority=issue.priority,
                breakdown=breakdown,
                evidence=evidence,
                quotes=[shorten(q, limit) for q in quotes],
                model_versions=_versions(issue),
                examples=examples,
            )
        )
    return [CategoryGroup(category, members) for category, members in groups.items()]


def _category_mix(
    session: Session, weeks: list[str], bounds: list[tuple[datetime, datetime]]
) -> CategoryMix:
    per_week = [store.digest_category_volumes(session, start=s, end=e) for s, e in bounds]
    counts: dict[str, list[int]] = {}
    for category in CATEGORIES:
        series = [
            sum(
                n
                for c, n in week.items()
                if (c if c in CATEGORY_COLOURS else UNCATEGORISED) == category
            )
            for week in per_week
        ]
        if any(series):
            counts[category] = series
    return CategoryMix(weeks=weeks, counts=counts)


def _versions_table(
    session: Session, start: datetime, end: datetime, settings: Settings
) -> list[VersionRow]:
    traffic = store.digest_model_traffic(session, start=start, end=end)
    complaints = store.digest_model_complaints(session, start=start, end=end)
    total_traffic, total_complaints = sum(traffic.values()), sum(complaints.values())
    rows = []
    for key in set(traffic) | set(complaints):
        t, c = traffic.get(key, 0), complaints.get(key, 0)
        t_share = t / total_traffic if total_traffic else None
        c_share = c / total_complaints if total_complaints else None
        lift = c_share / t_share if c_share is not None and t_share else None
        rows.append(
            VersionRow(
                model=key[0],
                version=key[1],
                traffic=t,
                traffic_share=t_share,
                complaints=c,
                complaint_share=c_share,
                lift=lift,
                flagged=c >= settings.link_min_count
                and (lift is None or lift >= settings.link_min_lift),
            )
        )
    rows.sort(key=lambda r: (-r.complaints, -r.traffic, r.model, r.version or ""))
    return rows


def summarize(data: DigestData) -> dict[str, Any]:
    """The digest's numbers as JSON: stored with it, sent to the webhook, and read back by the
    next week's digest for the figures only the ranker's latest run knows."""
    return {
        "week": data.week,
        "start": data.start.isoformat(),
        "end": data.end.isoformat(),
        "generated_at": data.generated_at.isoformat(),
        "headline": {
            f.name: {"this_week": f.this_week, "last_week": f.last_week} for f in data.headline
        },
        "top_issues": [
            {
                "id": top.issue.id,
                "title": top.issue.title,
                "category": top.issue.category,
                "priority": round(top.priority, 4),
                "this_week": top.issue.this_week,
            }
            for group in data.top
            for top in group.issues
        ],
        "new_issues": [n.issue.id for n in data.new],
        "growing_issues": [c.issue.id for c in data.changes if not c.spiking],
        "spiking_issues": [c.issue.id for c in data.changes if c.spiking],
        "regressed_issues": [r.issue.id for r in data.regressions],
        "flagged_versions": [
            {"model": v.model, "version": v.version, "lift": v.lift}
            for v in data.versions
            if v.flagged
        ],
    }


# --- HTML --------------------------------------------------------------------------------------
# The charts are hand-built SVG: a chart library would have to be shipped or fetched as script,
# and the digest must be one script-free file that renders the same in a mail client, on a
# phone, offline and on paper. A sparkline and a stacked bar chart are a few lines of arithmetic.


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    points: str
    area: str
    last_x: float
    last_y: float
    label: str


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 30) -> Sparkline:
    pad = 3
    top = max(max(values, default=0), 1)
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    xy = [
        (pad + i * step, height - pad - (height - 2 * pad) * v / top) for i, v in enumerate(values)
    ]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    area = f"{pad:.1f},{height - pad:.1f} {points} {xy[-1][0]:.1f},{height - pad:.1f}"
    return Sparkline(
        width=width,
        height=height,
        points=points,
        area=area,
        last_x=round(xy[-1][0], 1),
        last_y=round(xy[-1][1], 1),
        label="tickets per week, oldest first: " + ", ".join(str(v) for v in values),
    )


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    bottom: float
    top: float
    max_value: int
    bars: list[Bar]


def _nice_ceiling(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def stacked_bars(mix: CategoryMix, *, width: int = 400, height: int = 200) -> BarChart:
    left, right, top, bottom = 36, 8, 10, height - 24
    ceiling = _nice_ceiling(max(mix.totals(), default=0))
    slot = (width - left - right) / max(len(mix.weeks), 1)
    bars = []
    for i, week in enumerate(mix.weeks):
        y = float(bottom)
        segments = []
        for category, series in mix.counts.items():
            count = series[i]
            if not count:
                continue
            h = (bottom - top) * count / ceiling
            y -= h
            segments.append(
                Segment(
                    y=round(y, 2),
                    height=round(h, 2),
                    colour=CATEGORY_COLOURS[category],
                    title=f"{week}: {category} {count}",
                )
            )
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                label=week.split("-")[1],
                total=sum(series[i] for series in mix.counts.values()),
                segments=segments,
            )
        )
    return BarChart(width, height, left, bottom, top, ceiling, bars)


def _pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0%}"


def _delta(figure: Figure) -> str:
    if figure.last_week is None:
        return "no earlier figure"
    if figure.share:
        points = (figure.delta or 0.0) * 100
        return f"{points:+.0f} pts vs {_pct(figure.last_week)}"
    if figure.last_week == 0:
        return f"vs {_count(figure.last_week)} the week before"
    change = (figure.delta or 0.0) / figure.last_week
    return f"{change:+.0%} vs {_count(figure.last_week)}"


def _day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%d %b %Y}"


def _long_day(value: datetime) -> str:
    return f"{value:%a %d %b %Y}"


def _moment(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%d %b %Y %H:%M} UTC"


def _figure_value(figure: Figure) -> str:
    return _pct(figure.this_week) if figure.share else _count(figure.this_week)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=_pct,
        count=_count,
        signed_pct=_signed_pct,
        delta=_delta,
        day=_day,
        long_day=_long_day,
        moment=_moment,
        figure_value=_figure_value,
    )
    env.globals.update(sparkline=sparkline, stacked_bars=stacked_bars, colours=CATEGORY_COLOURS)
    return env


def render_html(data: DigestData) -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing fetched."""
    template = _environment().get_template("digest.html.j2")
    return template.render(d=data, last_day=data.end - timedelta(days=1))


# --- Markdown ----------------------------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_BLOCK_MARK = re.compile(r"^([#+=>-])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")
_BLOCKS = "▁▂▃▄▅▆▇█"


def md_escape(text: str | None) -> str:
    """Customer or machine text made inert in Markdown: on one line, HTML-escaped (so nothing
    pasted can become a tag), emphasis, link, code and table characters backslash-escaped, and
    a leading block marker (heading, list, quote) neutralised."""
    text = " ".join((text or "").split())
    text = html.escape(text, quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_BLOCK_MARK.sub(r"\\\1", text)
    return _MD_ORDERED.sub(r"\1\\\2", text)


def text_sparkline(values: Sequence[int]) -> str:
    top = max(max(values, default=0), 1)
    return "".join(
        _BLOCKS[min(len(_BLOCKS) - 1, round(v / top * (len(_BLOCKS) - 1)))] for v in values
    )


def _md_category(issue: IssueRef) -> str:
    category = md_escape(issue.category) if issue.category else UNCATEGORISED
    if issue.confidence is not None:
        category += f" {issue.confidence:.0%}"
    return category


def _md_ref(issue: IssueRef) -> str:
    return f"#{issue.id} {md_escape(issue.title)}"


def render_markdown(data: DigestData) -> str:
    """The digest for chat, wikis and e-mail; every piece of stored text goes through
    ``md_escape``."""
    last_day = data.end - timedelta(days=1)
    lines = [
        f"# Customer feedback digest, {data.week}",
        "",
        f"{_long_day(data.start)} to {_long_day(last_day)} (UTC), "
        f"generated {_moment(data.generated_at)}",
        "",
        "## This week",
        "",
        "| | this week | week before |",
        "|---|---:|---:|",
    ]
    for f in data.headline:
        before = _pct(f.last_week) if f.share else _count(f.last_week)
        lines.append(f"| {f.label} | {_figure_value(f)} | {before} |")
    linked, unassigned = data.figure("linked"), data.figure("unassigned")
    lines += [
        "",
        f"_{_pct(linked.this_week)} of this week's feedback is linked to a model output and "
        f"{_pct(unassigned.this_week)} of its statements fit no issue: the larger the second "
        "number, the more this digest misses._",
    ]
    lines += [f"> {md_escape(note)}" for note in data.notes]

    lines += ["", "## Top issues by priority", ""]
    if not data.top:
        lines.append("No open issues.")
    for group in data.top:
        lines += [f"### {md_escape(group.category)}", ""]
        for top in group.issues:
            issue = top.issue
            lines.append(
                f"**{_md_ref(issue)}** · {_md_category(issue)} · priority {top.priority:.2f} · "
                f"{md_escape(issue.status)}"
            )
            lines.append("")
            lines.append(
                f"- Tickets per week: {text_sparkline(issue.weekly)} {issue.this_week} this week, "
                f"{issue.customers} customers, {issue.size} statements in all"
            )
            if top.breakdown:
                lines.append(
                    "- Priority: "
                    + " + ".join(f"{md_escape(name)} {value:.2f}" for name, value in top.breakdown)
                )
            for signal, reason in top.evidence:
                prefix = f"{md_escape(signal)}: " if signal else ""
                lines.append(f"- Evidence: {prefix}{md_escape(reason)}")
            for version in top.model_versions:
                lines.append(f"- Model version: {md_escape(version)}")
            for example in top.examples:
                name = md_escape(" ".join(filter(None, [example.model, example.model_version])))
                lines.append(
                    f"- Linked output ({name}, {md_escape(example.link_method)} link "
                    f"{example.link_confidence:.0%}): input “{md_escape(example.input)}” → "
                    f"output “{md_escape(example.output)}”"
                )
            if top.quotes:
                # A blank quoted line between quotes keeps each its own paragraph.
                lines += ["", "\n>\n".join(f"> “{md_escape(q)}”" for q in top.quotes)]
            lines.append("")

    lines += ["## New this week", ""]
    lines += [
        f"- {_md_ref(n.issue)} ({_md_category(n.issue)}): {n.issue.this_week} tickets, "
        f"first on {_day(n.first_seen)}"
        for n in data.new
    ] or ["None."]

    lines += ["", "## Growing and spiking", ""]
    if data.changes:
        lines += [
            "| issue | this week | weekly mean before | change | spike |",
            "|---|---:|---:|---:|---|",
        ]
        for c in data.changes:
            spike = (
                f"yes (p={c.p_value:.1g})"
                if c.spiking and c.p_value is not None
                else ("yes" if c.spiking else "no")
            )
            lines.append(
                f"| {_md_ref(c.issue)} | {c.this_week} | {c.trailing_mean:.1f} | "
                f"{_signed_pct(c.change)} | {spike} |"
            )
    else:
        lines.append("None.")

    lines += ["", "## Resolved, then regressed", ""]
    lines += [
        f"- {_md_ref(r.issue)}: resolved {_day(r.resolved_at)}, came back {_day(r.regressed_at)}, "
        f"{r.issue.this_week} tickets this week"
        for r in data.regressions
    ] or ["None."]

    lines += ["", "## Corrected by people this week", ""]
    lines += [
        f"- #{c.issue_id} {md_escape(c.title)}: {md_escape(c.description)} "
        f"({md_escape(c.actor) or 'someone'}, {_moment(c.at)})"
        for c in data.corrections
    ] or ["None."]

    mix = data.category_mix
    lines += ["", f"## Category mix, last {len(mix.weeks)} weeks (statements in issues)", ""]
    if mix.counts:
        lines.append("| category | " + " | ".join(w.split("-")[1] for w in mix.weeks) + " |")
        lines.append("|---|" + "---:|" * len(mix.weeks))
        for category, series in mix.counts.items():
            lines.append(f"| {category} | " + " | ".join(str(n) for n in series) + " |")
    else:
        lines.append("No statements in issues in these weeks.")

    lines += ["", "## Model versions: traffic vs complaints", ""]
    if data.versions:
        lines += [
            "| model | version | outputs | traffic share | complaints | complaint share | ratio |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for v in data.versions:
            ratio = "—" if v.lift is None else f"{v.lift:.1f}×"
            flag = " ⚠" if v.flagged else ""
            lines.append(
                f"| {md_escape(v.model)} | {md_escape(v.version) or '—'} | {v.traffic:,} | "
                f"{_pct(v.traffic_share)} | {v.complaints:,} | {_pct(v.complaint_share)} | "
                f"{ratio}{flag} |"
            )
        lines += ["", "⚠: far more complaints than its share of traffic."]
    else:
        lines.append("No model outputs logged or linked this week.")
    lines.append("")
    return "\n".join(lines)


# --- storing -----------------------------------------------------------------------------------


def generate(
    engine: Engine,
    *,
    week: str,
    fmt: str,
    settings: Settings,
    regenerate: bool = False,
    now: datetime | None = None,
) -> Digest:
    """The stored digest of ``week`` in ``fmt`` ("html" or "md"), made and stored on first use.

    A stored digest is returned as it is, so it reads the same whenever it is asked for;
    ``regenerate`` makes it again from today's data.
    """
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"Unknown digest format {fmt!r}; use html or md.", details={"field": "format"}
        )
    _, end = parse_week(week)
    now = as_utc(now) if now else utcnow()
    with db.session_scope(engine) as session:
        stored = store.get_digest(session, week=week, fmt=fmt)
    if stored is not None and not regenerate:
        return stored
    if end > now:
        raise InvalidInputError(
            f"Week {week} is not over until {_moment(end)}, so its digest would be incomplete; "
            f"the last complete week is {last_complete_week(now)}.",
            details={"field": "week"},
        )
    with db.session_scope(engine) as session:
        data = collect(session, week=week, settings=settings, now=now)
    content = render_html(data) if fmt == "html" else render_markdown(data)
    with db.session_scope(engine, write_lock=True) as session:
        return store.save_digest(
            session,
            week=week,
            fmt=fmt,
            content=content,
            summary=summarize(data),
            generated_at=now,
            replace=regenerate,
        )


# --- delivery ----------------------------------------------------------------------------------


def _host(url: str) -> str:
    # Webhook URLs often carry their secret in the path; messages and logs name the host only.
    return urlsplit(url).hostname or "the webhook"


def deliver_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """POST ``payload`` as JSON; retry network errors, 429 and 5xx, waiting ``backoff``,
    then twice as long each time. Any other answer outside 2xx fails at once."""
    own_client = client is None
    client = client or httpx.Client(timeout=timeout)
    problem = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload)
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if 200 <= response.status_code < 300:
                    return response
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise DigestDeliveryError(
                        f"{_host(url)} refused the digest with HTTP {response.status_code}; "
                        "check TRIAGE_DIGEST_WEBHOOK_URL."
                    )
            logger.warning("digest webhook attempt %d/%d failed: %s", attempt, attempts, problem)
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    finally:
        if own_client:
            client.close()
    raise DigestDeliveryError(
        f"Could not deliver the digest to {_host(url)} after {attempts} attempts ({problem})."
    )


def webhook_payload(
    digest: Digest, *, link: str | None = None, path: str | None = None
) -> dict[str, Any]:
    """A JSON summary with where to read the digest; ``text`` pastes into chat as it is."""
    headline = digest.summary.get("headline", {})

    def figure(name: str) -> Any:
        return (headline.get(name) or {}).get("this_week")

    text = (
        f"Feedback digest {digest.week}: {_count(_number(figure('feedback')))} feedback items, "
        f"{_count(_number(figure('new')))} new issues, {_count(_number(figure('growing')))} "
        f"growing, {_count(_number(figure('spiking')))} spiking, "
        f"{_count(_number(figure('regressed')))} regressed."
    )
    if link or path:
        text += f" {link or path}"
    return {
        "text": text,
        "week": digest.week,
        "format": digest.format,
        "link": link,
        "path": path,
        "generated_at": as_utc(digest.generated_at).isoformat(),  # type: ignore[union-attr]
        "summary": {k: v for k, v in digest.summary.items() if k != "delivery"},
    }


def digest_link(settings: Settings, week: str, fmt: str = "html") -> str | None:
    if not settings.digest_base_url:
        return None
    return f"{settings.digest_base_url.rstrip('/')}/v1/digests/{week}?format={fmt}"


def write_file(digest: Digest, folder: str | Path) -> Path:
    path = Path(folder) / f"digest-{digest.week}.{digest.format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest.content, encoding="utf-8")
    return path


def maybe_generate_digest(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    client: httpx.Client | None = None,
) -> Digest | None:
    """The worker's hook: once the schedule is due, make the last complete week's digest in
    every format, write it to ``digest_dir`` and send the webhook, each exactly once.

    Cheap when there is nothing to do (one small query). Several workers may call it: the
    digest is stored once, and only the worker that claims the delivery sends it. A failed
    delivery is released and tried again after ``digest_retry_minutes``. Returns the HTML
    digest when this call made or delivered it.
    """
    now = as_utc(now) if now else utcnow()
    week = last_complete_week(now)
    if now < due_at(week, weekday=settings.digest_weekday, hour=settings.digest_hour):
        return None
    with db.session_scope(engine) as session:
        stored = store.get_digest(session, week=week, fmt="html")
    if stored is not None:
        if stored.delivered_at is not None or not settings.digest_webhook_url:
            return None
        failed_at = _at((stored.summary.get("delivery") or {}).get("failed_at"))
        if failed_at and now - failed_at < timedelta(minutes=settings.digest_retry_minutes):
            return None

    digests = {
        fmt: generate(engine, week=week, fmt=fmt, settings=settings, now=now) for fmt in FORMATS
    }
    digest = digests["html"]
    path = None
    if settings.digest_dir:
        for fmt_digest in digests.values():
            written = write_file(fmt_digest, settings.digest_dir)
            path = path or str(written)
    logger.info("digest %s generated%s", week, f" at {path}" if path else "")
    if not settings.digest_webhook_url:
        return digest

    with db.session_scope(engine, write_lock=True) as session:
        claimed = store.claim_digest_delivery(session, digest_id=digest.id, at=now)  # type: ignore[arg-type]
    if not claimed:
        return None
    payload = webhook_payload(digest, link=digest_link(settings, week), path=path)
    try:
        deliver_webhook(
            settings.digest_webhook_url,
            payload,
            attempts=settings.digest_webhook_attempts,
            backoff=settings.digest_webhook_backoff_seconds,
            timeout=settings.digest_webhook_timeout_seconds,
            client=client,
        )
    except DigestDeliveryError as e:
        logger.warning("digest %s not delivered: %s", week, e.message)
        with db.session_scope(engine, write_lock=True) as session:
            store.release_digest_delivery(
                session,
                digest_id=digest.id,  # type: ignore[arg-type]
                failed_at=now,
                error=e.message,
            )
        return None
    logger.info("digest %s delivered to %s", week, _host(settings.digest_webhook_url))
    with db.session_scope(engine) as session:
        return store.get_digest(session, week=week, fmt="html")
