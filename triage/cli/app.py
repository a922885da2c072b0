"""The Typer app and what every command shares: the consoles, errors as one line, the database
made ready, progress bars."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from triage import db
from triage.config import Settings
from triage.errors import TriageError

app = typer.Typer(
    help="Customer feedback about ML products, turned into ranked engineering issues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

console = Console(stderr=True, soft_wrap=True)
out = Console()

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become one readable line and a non-zero exit, not a traceback."""
    try:
        yield
    except TriageError as e:
        raise _fail(e.message) from None


def _ready(settings: Settings) -> Any:
    db.ensure_schema(settings.database_url, allow_upgrade=settings.auto_upgrade_sqlite)
    return db.get_engine(settings.database_url)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal and "TRIAGE_PROGRESS" not in os.environ,
    )
