"""``triage issues`` (and ``triage issues export``) and ``triage export``: reading what is
stored, and sending an issue to a tracker."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from triage import db, store
from triage.cli.app import _errors, _ready, console, out
from triage.config import get_settings
from triage.csv_export import CsvDictWriter, CsvWriter
from triage.models import (
    FEEDBACK_REDACTED_ON_READ,
    Category,
    IssuePublic,
    IssueStatus,
    Tracker,
)
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


# What a person still has to look at; `--status all` shows the rest too.
DEFAULT_STATUSES = "open,acknowledged,regressed"


def parse_statuses(value: str) -> list[str] | None:
    """`open,acknowledged` as a list of statuses; None (no filter) for `all`."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return None
    unknown = [name for name in names if name not in IssueStatus.__members__]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown status {', '.join(unknown) or value!r}; use a comma-separated list of "
            f"{', '.join(IssueStatus)}, or `all`."
        )
    return names


def issue_rows(
    session: Any, *, category: str | None, top: int, statuses: list[str] | None = None
) -> list[dict[str, Any]]:
    issues, _ = store.list_issues(session, category=category, statuses=statuses, limit=top)
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
        writer = CsvWriter(sys.stdout)
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
    # One line a row at any width: the title gives way (with …) to the short cells beside it.
    wide = out.width >= 120
    names = ["id", "title", "status", "category", "prio", "size", "cust.", "trend"]
    cells = []
    for r in rows:
        category = r["category"] or "-"
        if r["confidence"] is not None:
            category += f" {r['confidence']:.0%}"
        trend = r["trend"] or {}
        change = f"{trend.get('this_week', 0)}/wk" + (" ↑" if trend.get("spiking") else "")
        cells.append([str(r["id"]), r["title"], r["status"], category, f"{r['priority']:.2f}",
                      str(r["size"]), str(r["customers"]), change])  # fmt: skip
    widths = {
        name: max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(names)
    }
    # Each column costs 2 characters besides its text: a separator and (collapsed) padding.
    room = out.width - sum(w + 2 for name, w in widths.items() if name != "title") - 3
    if wide:
        names.append("top evidence")
        room //= 2
        for row, r in zip(cells, rows, strict=True):
            row.append(r["evidence"][0] if r["evidence"] else "")
    table = Table(caption=caption, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for name in names:
        flexible = name in ("title", "top evidence")
        table.add_column(
            name,
            justify="right" if name == "id" else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if flexible else widths[name],
            max_width=max(10, room) if flexible else None,
        )
    for row in cells:
        table.add_row(*row)
    out.print(table)
    # Printed whole below the table: a URL in a narrow column would be cut.
    for r in rows:
        if r["external_url"]:
            out.print(f"#{r['id']} ticket: {r['external_url']}", soft_wrap=True)


def issues(
    ctx: typer.Context,
    category: Annotated[Category | None, typer.Option(help="Only this category.")] = None,
    status: Annotated[
        str,
        typer.Option(
            help="Comma-separated statuses to show, or `all`; resolved and ignored are hidden."
        ),
    ] = DEFAULT_STATUSES,
    top: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    format: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
) -> None:
    """The ranked issue list."""
    if ctx.invoked_subcommand is not None:
        return
    statuses = parse_statuses(status)
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            rows = issue_rows(
                session,
                category=category.value if category else None,
                top=top,
                statuses=statuses,
            )
    if not rows and format is TableFormat.table:
        console.print("no issues yet: ingest feedback and run `triage run`")
    print_issues(rows, format)


issues_app.callback(invoke_without_command=True)(issues)


def print_issue(issue: Any, *, member_tickets: int) -> None:
    """One issue as its web page shows it, top to bottom."""
    out.print(f"[bold]#{issue.id} {escape(issue.title or '(untitled)')}[/]")
    category = issue.category or "none"
    if issue.category_confidence is not None:
        category += f" ({issue.category_confidence:.0%} confident"
        category += f"; runner-up {issue.category_runner_up})" if issue.category_runner_up else ")"
    out.print(f"status {issue.status} · category {category} · priority {issue.priority:.2f}")
    out.print(
        f"{issue.size} statements from {issue.customers} customers, "
        f"in {member_tickets} member tickets"
        + (f" · assigned to {escape(issue.assignee)}" if issue.assignee else "")
    )
    if issue.merged_into:
        out.print(f"merged into issue {issue.merged_into}")
    sections: list[tuple[str, list[str]]] = [
        ("Why this category", [
            f"{e.get('reason')} ({e.get('signal')}→{e.get('category')}, "
            f"{float(e.get('contribution') or 0):+.3f})"
            for e in issue.evidence[:5]
        ]),
        ("Priority breakdown", [
            f"{name}: {float(value):.3f}" for name, value in issue.priority_breakdown.items()
        ]),
        ("Trend", [
            f"this week ({issue.trend.get('week', '?')}) {issue.trend.get('this_week', 0)} "
            f"against {float(issue.trend.get('trailing_mean') or 0):.1f} a week before"
            + (": spiking" if issue.trend.get("spiking") else "")
        ] if issue.trend else []),
        ("Quotes", [f"“{quote}”" for quote in issue.quotes]),
        ("Model versions", [
            str(v.get("version") or v.get("model") or v) for v in issue.model_versions
        ]),
    ]  # fmt: skip
    for heading, lines in sections:
        out.print(f"\n[bold]{heading}[/]")
        for line in lines or ["none yet"]:
            out.print(f"  {escape(line)}", soft_wrap=True)
    if issue.keywords:
        out.print(f"\nkeywords: {escape(', '.join(issue.keywords))}")
    out.print(f"tracker: {issue.external_url or 'not exported'}", soft_wrap=True)


def issue(
    issue_id: Annotated[int, typer.Argument(min=1, help="The issue's id in `triage issues`.")],
    format: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
) -> None:
    """One issue as its web page shows it: category and why, priority, trend, quotes."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            found = store.get_issue(session, issue_id=issue_id)
            _, member_tickets = store.issue_members(session, issue_id=issue_id, limit=1)
    if format is TableFormat.table:
        print_issue(found, member_tickets=member_tickets)
        return
    row = IssuePublic.model_validate(found).model_dump(mode="json")
    row["member_tickets"] = member_tickets
    if format is TableFormat.json:
        print(json.dumps(row, indent=2))
        return
    writer = CsvDictWriter(sys.stdout, fieldnames=list(row))
    writer.writeheader()
    writer.writerow({k: v if isinstance(v, str | int | float | None) else json.dumps(v)
                     for k, v in row.items()})  # fmt: skip


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
                    writer = CsvDictWriter(sys.stdout, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
