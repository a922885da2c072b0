"""Making and storing a week's digest: stored once its week is closed, so last month's digest
reads the same next year."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from triage import db, store
from triage.config import Settings
from triage.digest.collect import collect
from triage.digest.formatting import moment
from triage.digest.model import DigestData
from triage.digest.render_html import render_html
from triage.digest.render_markdown import render_markdown
from triage.digest.weeks import due_at, last_complete_week, parse_digest_week
from triage.errors import InvalidInputError
from triage.models import Digest, as_utc, utcnow

FORMATS = ("html", "md")


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
                "ticket_url": top.ticket_url,
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


def generate(
    engine: Engine,
    *,
    week: str,
    fmt: str,
    settings: Settings,
    regenerate: bool = False,
    now: datetime | None = None,
) -> Digest:
    """The digest of ``week`` in ``fmt`` ("html" or "md").

    A week's digest is stored only once the week is closed: at the schedule's moment after it
    (``closes_at``: ``digest_weekday`` at ``digest_hour``, UTC; Monday 08:00 by default), when
    the worker makes it. Both formats are then made from one reading of the data and stored
    together, so the HTML and the Markdown agree, and a stored digest reads the same whenever it
    is asked for; ``regenerate`` makes both again from today's data. A week that is over but not
    yet closed (tickets for it may still arrive) is made from the data as it is and returned
    unstored (``id`` None), so a later request sees the late tickets. A week not over yet has no
    digest.
    """
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"Unknown digest format {fmt!r}; use html or md.", details={"field": "format"}
        )
    _, end = parse_digest_week(week)
    now = as_utc(now) if now else utcnow()
    if end > now:
        raise InvalidInputError(
            f"Week {week} is not over until {moment(end)}, so its digest would be incomplete; "
            f"the last complete week is {last_complete_week(now)}.",
            details={"field": "week"},
        )
    closed = now >= closes_at(week, settings)
    if closed and not regenerate:
        with db.session_scope(engine) as session:
            stored = store.get_digest(session, week=week, fmt=fmt)
        if stored is not None:
            return stored
    with db.session_scope(engine) as session:
        data = collect(session, week=week, settings=settings, now=now)
    summary = summarize(data)
    if not closed:
        content = render_html(data) if fmt == "html" else render_markdown(data)
        return Digest(week=week, format=fmt, content=content, summary=summary, generated_at=now)
    contents = {"html": render_html(data), "md": render_markdown(data)}
    with db.session_scope(engine, write_lock=True) as session:
        saved = {
            each: store.save_digest(
                session,
                week=week,
                fmt=each,
                content=content,
                summary=dict(summary),
                generated_at=now,
                replace=regenerate,
            )
            for each, content in contents.items()
        }
    return saved[fmt]


def closes_at(week: str, settings: Settings) -> datetime:
    """When ``week`` is closed and its digest stored: the schedule's moment after it."""
    return due_at(week, weekday=settings.digest_weekday, hour=settings.digest_hour)
