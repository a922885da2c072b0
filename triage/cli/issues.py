"""``triage issues`` (and ``triage issues export``) and ``triage export``: reading what is
stored, and sending an issue to a tracker."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from triage import db, store
from triage.cli.app import _errors, _ready, console, out
from triage.config import get_settings
from triage.models import FEEDBACK_REDACTED_ON_READ, Category, Tracker
from triage.redaction import records_redactor, redact_fields

export_app = typer.Typer(help="Write stored data to stdout.", no_args_is_help=True)
# A group whose callback is the list itself: `triage issues [--category ...]` lists, and
# `triage issues export ID --to github` is its one subcommand.
issues_app = typer.Typer(help="The ranked issue list; `export` sends one to a tracker.")


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def issue_rows(session: Any, *, category: str | None, top: int) -> list[dict[str, Any]]:
    issues, _ = store.list_issues(session, category=category, limit=top)
    return [
        {
            "id": issue.id,
            "title": issue.title,
            "category": issue.category,
            "confidence": issue.category_confidence,
            "priority": round(issue.priority, 3),
            "size": issue.size,
            "customers": issue.customers,
            "status": issue.status,
            "keywords": issue.keywords,
            "trend": issue.trend,
            "evidence": [e.get("reason") for e in issue.evidence[:3]],
            "model_versions": issue.model_versions,
            "priority_breakdown": issue.priority_breakdown,
            "external_url": issue.external_url,
        }
        for issue in issues
    ]


def print_issues(rows: list[dict[str, Any]], fmt: TableFormat) -> None:
    if fmt is TableFormat.json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if fmt is TableFormat.csv:
        columns = ["id", "title", "category", "confidence", "priority", "size", "customers",
                   "status", "keywords", "top_evidence", "trend", "priority_breakdown",
                   "model_versions", "external_url"]  # fmt: skip
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for r in rows:
            flat = {**r, "keywords": "; ".join(r["keywords"]),
                    "top_evidence": " | ".join(r["evidence"])}  # fmt: skip
            for name in ("trend", "priority_breakdown", "model_versions"):
                flat[name] = json.dumps(r[name], default=str)
            writer.writerow([flat[c] for c in columns])
        return
    # "N/wk" is the tickets of one ISO week, the one the weekly digest reports; the caption says
    # which, so the list and the digest can be compared.
    weeks = sorted({str(r["trend"]["week"]) for r in rows if (r["trend"] or {}).get("week")})
    caption = f"trend: tickets in {', '.join(weeks)}, vs the weeks before" if weeks else None
    table = Table(
        "id", "title", "category", "priority", "size", "cust.", "trend", "top evidence",
        caption=caption,
    )  # fmt: skip
    for r in rows:
        category = r["category"] or "-"
        if r["confidence"] is not None:
            category += f" {r['confidence']:.0%}"
        trend = r["trend"] or {}
        change = f"{trend.get('this_week', 0)}/wk" + (" spiking" if trend.get("spiking") else "")
        evidence = r["evidence"][0] if r["evidence"] else ""
        table.add_row(
            str(r["id"]),
            r["title"],
            category,
            f"{r['priority']:.2f}",
            str(r["size"]),
            str(r["customers"]),
            change,
            evidence if len(evidence) <= 90 else evidence[:89] + "…",
        )
    out.print(table)
    # Printed whole below the table: a URL in a narrow column would be cut.
    for r in rows:
        if r["external_url"]:
            out.print(f"#{r['id']} ticket: {r['external_url']}", soft_wrap=True)


def issues(
    ctx: typer.Context,
    category: Annotated[Category | None, typer.Option(help="Only this category.")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    format: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
) -> None:
    """The ranked issue list."""
    if ctx.invoked_subcommand is not None:
        return
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            rows = issue_rows(session, category=category.value if category else None, top=top)
    if not rows and format is TableFormat.table:
        console.print("no issues yet: ingest feedback and run `triage run`")
    print_issues(rows, format)


issues_app.callback(invoke_without_command=True)(issues)


@issues_app.command("export")
def export_issue(
    issue_id: Annotated[int, typer.Argument(min=1, help="The issue's id in `triage issues`.")],
    to: Annotated[Tracker, typer.Option("--to", help="The tracker that gets the ticket.")],
) -> None:
    """Create the issue's ticket in GitHub, Jira or Linear, once: exported again, it prints the
    first ticket."""
    from triage.integrations.trackers import tracker_from_settings
    from triage.integrations.trackers.export import export_issue as export

    with _errors():
        settings = get_settings()
        tracker = tracker_from_settings(to, settings)
        result = export(
            _ready(settings),
            issue_id=issue_id,
            tracker=tracker,
            redact=records_redactor(settings),
            base_url=settings.digest_base_url,
            timeout=settings.tracker_timeout_seconds,
            actor="cli",
        )
    done = "created" if result.created else "already exported as"
    console.print(f"issue {issue_id}: {done} {result.key} in {tracker.label}")
    print(result.url)


@export_app.command("feedback")
def export_feedback(
    format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.jsonl,
) -> None:
    """One row per ticket: its status, main issue, all issues, category, redacted text."""
    with _errors():
        settings = get_settings()
        engine = _ready(settings)
        with db.session_scope(engine) as session:
            # Identifiers are stored as sent; like the API, the export shows them redacted.
            rows = redact_fields(
                store.export_feedback(session),
                FEEDBACK_REDACTED_ON_READ,
                records_redactor(settings),
            )
            if format is ExportFormat.jsonl:
                for row in rows:
                    sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                return
            writer = None
            for row in rows:
                flat = {k: ";".join(map(str, v)) if isinstance(v, list) else v
                        for k, v in row.items()}  # fmt: skip
                if writer is None:
                    writer = csv.DictWriter(sys.stdout, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
