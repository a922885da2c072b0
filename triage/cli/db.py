"""``triage db``: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from triage import db
from triage.cli.app import _errors, console, out
from triage.config import get_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


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
