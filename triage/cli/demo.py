"""``triage demo``: the whole loop on the fixtures, in a fresh database."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from triage import db
from triage.cli.app import FIXTURES, _errors, console
from triage.cli.issues import TableFormat, issue_rows, print_issues
from triage.cli.run import _run
from triage.config import get_settings

DEMO_FILES = {
    "outputs": ["model_outputs.jsonl", "history/model_outputs.jsonl"],
    "feedback": ["labelled.jsonl", "history/feedback.jsonl"],
}
# The fixtures' history ends with this ISO week; the demo moves it to the last complete week.
FIXTURES_LAST_MONDAY = date(2026, 11, 16)


def demo_shift(today: date) -> timedelta:
    last_complete_monday = today - timedelta(days=today.weekday() + 7)
    return last_complete_monday - FIXTURES_LAST_MONDAY


def demo(
    fixtures: Annotated[Path, typer.Option(help="Where the sample data is.")] = FIXTURES,
) -> None:
    """Load fixtures/ into a fresh database, run the whole loop, print the top issues."""
    from triage import digest as weekly
    from triage.ingest import ingest_feedback_file, ingest_outputs_file

    if "TRIAGE_DATABASE_URL" not in os.environ:
        path = Path.cwd() / "demo" / "triage-demo.db"
        path.parent.mkdir(exist_ok=True)
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{path}"
    get_settings.cache_clear()
    settings = get_settings()
    console.print(f"demo database: {settings.database_url}")
    shift = demo_shift(datetime.now(UTC).date())
    if shift:
        console.print(f"fixture dates moved by {shift.days} days to end last week")
    with _errors():
        db.upgrade(settings.database_url)
        engine = db.get_engine(settings.database_url)
        for kind, names in DEMO_FILES.items():
            for name in names:
                path = fixtures / name
                if not path.exists():
                    console.print(f"[yellow]missing {path}, skipped[/]")
                    continue
                load = ingest_outputs_file if kind == "outputs" else ingest_feedback_file
                report = load(engine, path, shift=shift)
                console.print(f"{name}: stored {report.stored}, rejected {len(report.errors)}")
        _run(settings, recluster=True, retry_failed=False)
        with db.session_scope(engine) as session:
            rows = issue_rows(session, category=None, top=10)
        week = weekly.last_complete_week()
        written = []
        for fmt in ("html", "md"):
            stored = weekly.generate(engine, week=week, fmt=fmt, settings=settings)
            path = Path.cwd() / "demo" / f"digest-{week}.{fmt}"
            path.parent.mkdir(exist_ok=True)
            path.write_text(stored.content, encoding="utf-8")
            written.append(path)
    print_issues(rows, TableFormat.table)
    console.print(f"weekly digest {week}: {written[0]} (Markdown: {written[1].name})")
    console.print(
        "next: `triage keys create --scope admin` and `triage serve` with "
        f"TRIAGE_DATABASE_URL={settings.database_url}"
    )
