"""Making and storing a week's digest: stored on first use, so last month's digest reads the
same next year."""

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
from triage.digest.weeks import last_complete_week, parse_week
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
            f"Week {week} is not over until {moment(end)}, so its digest would be incomplete; "
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
