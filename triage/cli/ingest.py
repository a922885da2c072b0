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
    for warning in report.warnings[:20]:
        console.print(f"  line {warning.line}: {warning.message}")
    if len(report.warnings) > 20:
        console.print(f"  … and {len(report.warnings) - 20} more warnings")
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
    date_column: Annotated[
        str | None, typer.Option(help="CSV: the column with each row's date (created_at).")
    ] = None,
    customer_column: Annotated[
        str | None, typer.Option(help="CSV: the column with the customer (account) id.")
    ] = None,
    user_column: Annotated[
        str | None, typer.Option(help="CSV: the column with the user id.")
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            help="CSV: the field separator, e.g. ';' or '\\t'; found from the header "
            "line when not given."
        ),
    ] = None,
    encoding: Annotated[
        str, typer.Option(help="The file's text encoding, e.g. cp1252 or latin-1.")
    ] = "utf-8",
) -> None:
    """Load tickets from JSONL (one FeedbackCreate object a line) or CSV. Idempotent.

    A file that does not decode in --encoding is refused whole, with the line, before anything
    is stored."""
    from triage.ingest import CsvOptions, count_lines, ingest_feedback_file

    csv_flags = (
        text_column,
        id_column,
        source,
        date_column,
        customer_column,
        user_column,
        delimiter,
    )
    options = None
    if any(csv_flags) or path.suffix.lower() == ".csv":
        options = CsvOptions(
            text_column=text_column or "text",
            id_column=id_column or "id",
            source=source,
            date_column=date_column,
            customer_column=customer_column,
            user_column=user_column,
            # A shell passes "\t" literally; a tab is what every TSV export means by it.
            delimiter="\t" if delimiter in ("\\t", "tab") else delimiter,
        )
    with _errors():
        engine = _ready(get_settings(), write=True)
        with _progress() as progress:
            task = progress.add_task("ingesting feedback", total=count_lines(path))
            report = ingest_feedback_file(
                engine,
                path,
                csv_options=options,
                encoding=encoding,
                progress=lambda n: progress.advance(task, n),
            )
    _report(report, "feedback")


@ingest_app.command("outputs")
def ingest_outputs(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load logged model outputs from JSONL (one ModelOutputCreate object a line). Idempotent."""
    from triage.ingest import count_lines, ingest_outputs_file

    with _errors():
        engine = _ready(get_settings(), write=True)
        with _progress() as progress:
            task = progress.add_task("ingesting model outputs", total=count_lines(path))
            report = ingest_outputs_file(engine, path, progress=lambda n: progress.advance(task, n))
    _report(report, "model outputs")
