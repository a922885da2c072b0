"""``triage db``: the database schema, and pruning old model outputs."""

from __future__ import annotations

from typing import Annotated

import typer

from triage import db
from triage.cli.app import _errors, _ready, console, out
from triage.config import get_settings

db_app = typer.Typer(help="Database schema and retention.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    wait: Annotated[float, typer.Option(help="Seconds to wait for the database to come up.")] = 0,
) -> None:
    """Create or migrate the schema to the newest revision."""
    settings = get_settings()
    with _errors():
        db.wait_until_reachable(settings.database_url, timeout=wait)
        db.upgrade(settings.database_url)
        current, _ = db.schema_state(db.get_engine(settings.database_url))
    console.print(f"schema at revision {current}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the one this version needs."""
    with _errors():
        current, head = db.schema_state(db.get_engine(get_settings().database_url))
    out.print(f"database: {current or 'empty'}  needed: {head}")


@db_app.command("prune")
def db_prune(
    days: Annotated[
        int | None,
        typer.Option(
            min=0, help="Retention in days; TRIAGE_OUTPUT_RETENTION_DAYS (90) by default."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Count what would go; delete nothing.")] = False,
) -> None:
    """Delete logged model outputs linked to no ticket once older than the retention period
    (by both created_at and arrival); outputs linked to feedback stay as long as their tickets,
    and every output still counts in traffic through the rollups. The worker does the same at
    most once a day."""
    from triage import retention
    from triage.link import SignalParams

    settings = get_settings()
    keep = settings.output_retention_days if days is None else days
    if keep == 0:
        out.print("retention is off (0 days): nothing deleted")
        return
    with _errors():
        engine = _ready(settings)
        if dry_run:
            count = retention.count_prunable(engine, retention_days=keep)
            out.print(
                f"would delete {count} model outputs linked to no ticket, older than {keep} days"
            )
            return
        result = retention.prune_outputs(
            engine, retention_days=keep, signals=SignalParams.from_settings(settings)
        )
    out.print(f"deleted {result.deleted} model outputs linked to no ticket, older than {keep} days")
    if result.partitions_dropped is not None:
        out.print(f"{result.partitions_dropped} monthly partitions dropped (counted above)")
