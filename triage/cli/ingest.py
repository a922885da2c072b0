"""``triage ingest``: tickets and model outputs from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from triage.cli.app import _errors, _progress, _ready, console
from triage.config import get_settings

ingest_app = typer.Typer(help="Load tickets or model outputs from files.", no_args_is_help=True)


def _report(report: Any, what: str) -> None:
    console.print(
        f"{what}: read {report.read}, stored {report.stored}, "
        f"already there {report.duplicates}, rejected {len(report.errors)}"
    )
    for error in report.errors[:20]:
        console.print(f"  line {error.line}: {error.message}")
    if len(report.errors) > 20:
        console.print(f"  … and {len(report.errors) - 20} more")
    if report.errors:
        raise typer.Exit(1)


@ingest_app.command("feedback")
def ingest_feedback(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    text_column: Annotated[str | None, typer.Option(help="CSV: the column with the text.")] = None,
    id_column: Annotated[str | None, typer.Option(help="CSV: the column with the id.")] = None,
    source: Annotated[str | None, typer.Option(help="CSV: the source of every row.")] = None,
) -> None:
    """Load tickets from JSONL (one FeedbackCreate object a line) or CSV. Idempotent."""
    from triage.ingest import count_lines, ingest_feedback_file

    columns = None
    if text_column or id_column or source or path.suffix.lower() == ".csv":
        columns = (text_column or "text", id_column or "id", source or path.stem)
    with _errors():
        engine = _ready(get_settings())
        with _progress() as progress:
            task = progress.add_task("ingesting feedback", total=count_lines(path))
            report = ingest_feedback_file(
                engine, path, csv_columns=columns, progress=lambda n: progress.advance(task, n)
            )
    _report(report, "feedback")


@ingest_app.command("outputs")
def ingest_outputs(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load logged model outputs from JSONL (one ModelOutputCreate object a line). Idempotent."""
    from triage.ingest import count_lines, ingest_outputs_file

    with _errors():
        engine = _ready(get_settings())
        with _progress() as progress:
            task = progress.add_task("ingesting model outputs", total=count_lines(path))
            report = ingest_outputs_file(engine, path, progress=lambda n: progress.advance(task, n))
    _report(report, "model outputs")
