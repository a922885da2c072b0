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
from typer.core import TyperOption

from triage import db
from triage.config import Settings
from triage.errors import TriageError

app = typer.Typer(
    help="Customer feedback about ML products, turned into ranked engineering issues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _option_type(self, ctx)


# Typer's help prints a type beside every option, `<bool>` even for a flag (`--help`,
# `--recluster/--no-recluster`) whose name already says what it takes; flags show none here.
_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

console = Console(stderr=True, soft_wrap=True)
out = Console()

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The labelled sets `triage train` learns from by default, each with the model outputs its
# tickets were about: the five products and the two chat assistants (fixtures/README.md).
FIXTURE_SETS = (
    (FIXTURES / "labelled.jsonl", FIXTURES / "model_outputs.jsonl"),
    (FIXTURES / "chat" / "labelled.jsonl", FIXTURES / "chat" / "model_outputs.jsonl"),
)


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


def _ready(settings: Settings, *, write: bool = False) -> Any:
    """The engine, schema checked. A missing SQLite file is created by commands that write and
    reported by commands that read, which would otherwise leave an empty database behind."""
    url = settings.database_url
    path = db.sqlite_file(url)
    if path is not None and not path.exists():
        if not write:
            raise _fail(
                f"there is no database at {path} yet: store feedback first "
                "(`triage ingest feedback FILE` or `triage demo`), or point TRIAGE_DATABASE_URL "
                "at an existing one."
            )
        db.upgrade(url)
        console.print(f"created a new database at {path}")
    db.ensure_schema(url, allow_upgrade=settings.auto_upgrade_sqlite)
    return db.get_engine(url)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal and "TRIAGE_PROGRESS" not in os.environ,
    )
