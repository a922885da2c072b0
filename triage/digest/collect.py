"""Everything one week's digest shows, read from the database through ``store``.

A ticket belongs to the week its source says it was written (``created_at``), or to the week we
received it when the source sent no time (``store.feedback_time``). Growing and spiking are
judged on the digest's own ISO week by the ranker's function (``rank.weekly_trend``) on the same
distinct-ticket counts, so a refresh after the week ended shows the same figure in the issue list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from triage import store
from triage.config import Settings
from triage.digest.history import LiveIssues
from triage.digest.model import (
    CATEGORIES,
    CATEGORY_COLOURS,
    UNCATEGORISED,
    CategoryMix,
    Change,
    Correction,
    DigestData,
    Figure,
    IssueRef,
    NewIssue,
    Regression,
    VersionRow,
)
from triage.digest.top_issues import top_issues
from triage.digest.values import between
from triage.digest.weeks import WEEK, parse_week, shift_week
from triage.models import AuditLog, Issue, IssueStatus, as_utc, utcnow
from triage.rank import RankConfig, Trend, weekly_trend


def _title(issue: Issue) -> str:
    return issue.title or f"Issue {issue.id} (untitled)"


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
        into: Any = after.get("merged_into")  # JSON from the audit log: an id, unless malformed
        return f"merged into #{into} {titles.get(into, '')}".rstrip()
    if entry.action == "issue.move_units":
        count = len(after.get("unit_ids") or [])
        return f"{count} statement{'s' if count != 1 else ''} moved in by hand"
    return entry.action


def collect(
    session: Session, *, week: str, settings: Settings, now: datetime | None = None
) -> DigestData:
    """Everything the digest of ``week`` shows, read from the database."""
    start, end = parse_week(week)
    now = as_utc(now) if now else utcnow()
    weeks = [shift_week(week, i - settings.digest_weeks + 1) for i in range(settings.digest_weeks)]
    bounds = [parse_week(w) for w in weeks]
    rank = RankConfig.from_settings(settings)
    # The trend of this week and of the week before (the headline's comparison) needs
    # ``trend_weeks`` more weeks than either, whatever the charts show.
    span = max(settings.digest_weeks, rank.trend_weeks + 2)
    counted = [parse_week(shift_week(week, i - span + 1)) for i in range(span)]

    per_week = [store.digest_issue_volumes(session, start=s, end=e) for s, e in counted]
    volumes = per_week[-settings.digest_weeks :]
    everything = {int(issue.id): issue for issue in store.digest_issues(session)}  # type: ignore[arg-type]
    titles = {i: _title(issue) for i, issue in everything.items()}
    live = {i: issue for i, issue in everything.items() if issue.merged_into is None}
    known = LiveIssues(
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
        first_seen={k: as_utc(v) for k, v in store.digest_issue_first_seen(session).items()},
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
    history = {i: [counts.get(i, 0) for counts in per_week] for i in live}
    trends = {i: _trend(series, rank) for i, series in history.items()}
    before = {i: _trend(series[:-1], rank) for i, series in history.items()}
    changes = _changes(live, known.refs, trends, settings)
    corrections = [
        Correction(
            issue_id=int(entry.target_id),
            title=titles.get(int(entry.target_id), f"Issue {entry.target_id}"),
            at=as_utc(entry.at),
            actor=entry.actor,
            action=entry.action,
            description=_describe(entry, titles),
        )
        for entry in known.audit
        if between(as_utc(entry.at), start, end) and entry.target_id.isdigit()
    ]

    notes = []
    if end > now:
        notes.append(f"Week {week} is not over yet: every figure is partial.")
    return DigestData(
        week=week,
        start=start,
        end=end,
        generated_at=now,
        weeks=weeks,
        headline=_headline(
            session,
            week,
            known,
            new,
            changes,
            _changes(live, known.refs, before, settings),
            regressions,
            settings,
        ),
        top=top_issues(session, known, start, end, settings),
        new=new,
        changes=changes,
        regressions=regressions,
        corrections=corrections,
        category_mix=_category_mix(session, weeks, bounds),
        versions=_versions_table(session, start, end, settings),
        notes=notes,
    )


def _trend(series: list[int], config: RankConfig) -> Trend:
    """The trend of the last week of ``series`` (distinct tickets per week, oldest first)."""
    return weekly_trend(series[-1], series[-1 - config.trend_weeks : -1], config)


def _changes(
    issues: dict[int, Issue],
    refs: dict[int, IssueRef],
    trends: dict[int, Trend],
    settings: Settings,
) -> list[Change]:
    """Growing and spiking issues of the week, spikes first, then by change."""
    changes = []
    for i, issue in issues.items():
        trend = trends[i]
        if issue.status == IssueStatus.ignored:
            continue
        growing = (
            trend.change >= settings.digest_growing_min_change
            and trend.this_week >= settings.digest_growing_min_count
        )
        if trend.spiking or growing:
            changes.append(
                Change(
                    issue=refs[i],
                    this_week=trend.this_week,
                    trailing_mean=trend.trailing_mean,
                    change=trend.change,
                    spiking=trend.spiking,
                    p_value=trend.p_value,
                )
            )
    changes.sort(key=lambda c: (not c.spiking, -c.change, c.issue.id))
    return changes


def _headline(
    session: Session,
    week: str,
    known: LiveIssues,
    new: list[NewIssue],
    changes: list[Change],
    changes_before: list[Change],
    regressions: list[Regression],
    settings: Settings,
) -> list[Figure]:
    start, end = parse_week(week)
    before_start = start - WEEK
    this = store.digest_feedback_figures(session, start=start, end=end)
    before = store.digest_feedback_figures(session, start=before_start, end=start)

    def share(part: str, whole: str, figures: dict[str, int]) -> float | None:
        return figures[part] / figures[whole] if figures[whole] else None

    def growing(found: list[Change]) -> int:
        return sum(1 for c in found if c.change >= settings.digest_growing_min_change)

    def spiking(found: list[Change]) -> int:
        return sum(c.spiking for c in found)

    return [
        Figure("feedback", "Feedback received", this["tickets"], before["tickets"]),
        Figure("customers", "Distinct customers", this["customers"], before["customers"]),
        Figure("new", "New issues", len(new), len(known.new_in(before_start, start))),
        Figure("growing", "Growing issues", growing(changes), growing(changes_before)),
        Figure("spiking", "Spiking issues", spiking(changes), spiking(changes_before)),
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
        # A version with no output logged this week (complaints about older outputs, or a
        # version already rolled back) has no traffic figure: "0 outputs" would be untrue.
        t, c = traffic.get(key), complaints.get(key, 0)
        t_share = t / total_traffic if t is not None and total_traffic else None
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
                and lift is not None
                and lift >= settings.link_min_lift,
            )
        )
    rows.sort(key=lambda r: (-r.complaints, -(r.traffic or 0), r.model, r.version or ""))
    return rows
