"""The ``triage`` command: a thin shell over the library, with progress bars for long work."""

from __future__ import annotations

import atexit
import csv
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from triage import db, store
from triage.config import Settings, get_settings
from triage.errors import TriageError
from triage.models import Category, Scope

app = typer.Typer(
    help="Customer feedback about ML products, turned into ranked engineering issues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load tickets or model outputs from files.", no_args_is_help=True)
export_app = typer.Typer(help="Write stored data to stdout.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")

console = Console(stderr=True, soft_wrap=True)
out = Console()

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


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


# --- db -----------------------------------------------------------------------------------------


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


# --- keys ---------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="ingest: push data; read: pull; admin: both+edit")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
) -> None:
    """Make an API key. The key is printed once, on the last line, and stored only as a hash."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            key, secret = store.create_api_key(session, scope=scope, name=name)
    console.print(f"created key {key.id} ({key.scope}{', ' + name if name else ''}); keep it safe:")
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """Show keys without their secrets."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            keys = store.list_api_keys(session)
    table = Table("id", "name", "scope", "prefix", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.scope,
            key.prefix + "…",
            str(key.created_at)[:19],
            str(key.last_used_at or "")[:19],
            str(key.revoked_at or "")[:19],
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Stop a key from working, at once."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            store.revoke_api_key(session, key_id=key_id)
    console.print(f"key {key_id} revoked")


# --- ingest -------------------------------------------------------------------------------------


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


# --- processing ---------------------------------------------------------------------------------


def _import_pipeline() -> Any:
    """``triage.pipeline.Pipeline``. Its first import (spaCy, presidio, scipy, scikit-learn)
    makes millions of objects that live as long as the process; the garbage collector pauses
    while they are made and then leaves them out of its passes (``gc.freeze``), which would
    otherwise walk them all on every full collection: ~0.8 s of a 10,000-ticket run."""
    first = "triage.pipeline" not in sys.modules
    enabled = gc.isenabled()
    if first:
        gc.disable()
    try:
        from triage.pipeline import Pipeline
    finally:
        if first:
            gc.freeze()
            if enabled:
                gc.enable()
    return Pipeline


def _run(settings: Settings, *, recluster: bool, retry_failed: bool) -> None:
    Pipeline = _import_pipeline()
    engine = _ready(settings)
    with db.session_scope(engine) as session:
        pending = store.count_feedback_by_status(session).get("pending", 0)
    with _progress() as progress:
        task = progress.add_task("processing feedback", total=pending)
        processed, refreshed = Pipeline(settings).run(
            engine,
            recluster=recluster,
            retry_failed=retry_failed,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"processed {processed.processed}, failed {processed.failed}, units {processed.units} "
        f"(embedded {processed.embedded}, from cache {processed.cache_hits}); "
        f"{refreshed.issues} issues{' after a re-cluster' if refreshed.reclustered else ''}, "
        f"{refreshed.unassigned_share:.0%} of units unassigned"
    )
    if refreshed.skipped:
        console.print(f"skipped: {', '.join(refreshed.skipped)}")


def _exit_without_collecting(url: str) -> None:
    """At exit, close the database connections (SQLite folds its write-ahead log back into the
    file) and exempt every object alive from the garbage collector: its passes at interpreter
    shutdown walk everything spaCy, presidio, scipy and the run built (~0.5 s), only to free
    memory the operating system takes back anyway."""
    db.get_engine(url).dispose()
    gc.freeze()


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"


@app.command()
def run(
    recluster: Annotated[bool, typer.Option(help="Re-cluster everything.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try failed tickets again.")] = False,
    log_level: Annotated[
        LogLevel, typer.Option(help="triage's log messages to stderr; debug adds stage timings.")
    ] = LogLevel.warning,
) -> None:
    """Process everything pending and refresh the issues."""
    if log_level != LogLevel.warning:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("triage").addHandler(handler)
        logging.getLogger("triage").setLevel(log_level.upper())
    with _errors():
        settings = get_settings()
        _run(settings, recluster=recluster, retry_failed=retry_failed)
    atexit.register(_exit_without_collecting, settings.database_url)


@app.command()
def worker() -> None:
    """Process pending tickets until stopped (Ctrl-C). Several may run on PostgreSQL."""
    from triage.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with _errors():
        w = Worker(get_settings())
        try:
            w.run_forever()
        except KeyboardInterrupt:
            w.stop()


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the worker in this process.")] = True,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs), with an in-process worker by default."""
    import uvicorn

    from api.main import create_app

    settings = get_settings()
    with _errors():
        db.ensure_schema(settings.database_url, allow_upgrade=settings.auto_upgrade_sqlite)
    uvicorn.run(create_app(settings, run_worker=worker), host=host, port=port)


@app.command()
def train(
    labelled: Annotated[Path, typer.Option(help="Labelled JSONL (text, label, split).")] = (
        FIXTURES / "labelled.jsonl"
    ),
    out: Annotated[Path | None, typer.Option(help="Folder for the classifier.")] = None,
) -> None:
    """Retrain the category classifier on the labelled set plus people's corrections."""
    from triage.categorize import (
        DEFAULT_CLASSIFIER_DIR,
        DEFAULT_CUES,
        EXAMPLES_FILE,
        Categorizer,
        CueLexicon,
        LabelledExamples,
        classification_metrics,
        train_classifier,
    )
    from triage.pipeline import build_embedder

    settings = get_settings()
    with _errors():
        engine = _ready(settings)
        with db.session_scope(engine) as session:
            corrected = store.corrected_units(session)
        rows = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines()
                if line.strip()]  # fmt: skip
        train_rows = [r for r in rows if r.get("split", "train") == "train"]
        heldout = [r for r in rows if r.get("split") == "heldout"]
        embedder = build_embedder(settings)
        cues = CueLexicon.load(settings.categorize_cues_path or DEFAULT_CUES)

        def embed(texts: list[str]) -> Any:
            return embedder.embed(texts, batch_size=settings.embedding_batch_size)

        examples = LabelledExamples([r["text"] for r in train_rows],
                                    embed([r["text"] for r in train_rows]),
                                    [r["label"] for r in train_rows])  # fmt: skip
        corrections = (
            LabelledExamples(
                [t for t, _ in corrected],
                embed([t for t, _ in corrected]),
                [c for _, c in corrected],
            )
            if corrected
            else None
        )
        classifier = train_classifier(
            examples.texts, examples.vectors, examples.labels, corrections=corrections, cues=cues,
            card={"training_data": f"{labelled.name} split=train ({len(train_rows)} items) and "
                  f"{len(corrected)} corrected units", "embedding_model": embedder.model_id},
        )  # fmt: skip
        if heldout:
            # Text signals only: the held-out items' linked outputs are not in this database.
            categorizer = Categorizer(cues, examples, classifier)
            vectors = embed([r["text"] for r in heldout])
            predicted = [
                categorizer.decide([r["text"]], vectors[i : i + 1]).category
                for i, r in enumerate(heldout)
            ]
            metrics = classification_metrics([r["label"] for r in heldout], predicted)
            classifier.card["heldout_metrics"] = {
                "split": f"{labelled.name} split=heldout ({len(heldout)} items)",
                "evaluated_as": "text signals only (cues, examples, classifier)",
                "macro_f1": metrics["macro_f1"],
                "date": datetime.now(UTC).date().isoformat(),
            }
            console.print(f"held-out macro-F1 (text signals only): {metrics['macro_f1']:.3f}")
        folder = classifier.save(out or DEFAULT_CLASSIFIER_DIR)
        all_examples = examples + corrections if corrections is not None else examples
        all_examples.save(Path(folder) / EXAMPLES_FILE)
    console.print(
        f"trained on {len(train_rows)} labelled items and {len(corrected)} corrected units; "
        f"saved to {folder}"
    )


# --- reading ------------------------------------------------------------------------------------


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
                   "model_versions"]  # fmt: skip
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for r in rows:
            flat = {**r, "keywords": "; ".join(r["keywords"]),
                    "top_evidence": " | ".join(r["evidence"])}  # fmt: skip
            for name in ("trend", "priority_breakdown", "model_versions"):
                flat[name] = json.dumps(r[name], default=str)
            writer.writerow([flat[c] for c in columns])
        return
    table = Table("id", "title", "category", "priority", "size", "cust.", "trend", "top evidence")
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


@app.command()
def issues(
    category: Annotated[Category | None, typer.Option(help="Only this category.")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    format: Annotated[TableFormat, typer.Option("--format", "-f")] = TableFormat.table,
) -> None:
    """The ranked issue list."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            rows = issue_rows(session, category=category.value if category else None, top=top)
    if not rows and format is TableFormat.table:
        console.print("no issues yet: ingest feedback and run `triage run`")
    print_issues(rows, format)


@export_app.command("feedback")
def export_feedback(
    format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.jsonl,
) -> None:
    """One row per ticket: its status, main issue, all issues, category, redacted text."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            rows = store.export_feedback(session)
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


class DigestFormat(StrEnum):
    html = "html"
    md = "md"


@app.command()
def digest(
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47; the last complete one if unset.")
    ] = None,
    format: Annotated[DigestFormat, typer.Option("--format", "-f")] = DigestFormat.html,
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of stdout.", dir_okay=False)
    ] = None,
    regenerate: Annotated[
        bool, typer.Option(help="Make it again from today's data instead of the stored one.")
    ] = False,
) -> None:
    """The weekly digest (HTML or Markdown); each week's is stored once made."""
    from triage import digest as weekly

    settings = get_settings()
    with _errors():
        week = week or weekly.last_complete_week()
        engine = _ready(settings)
        stored = weekly.generate(
            engine, week=week, fmt=format.value, settings=settings, regenerate=regenerate
        )
    if out is None:
        sys.stdout.write(stored.content)
        console.print(f"digest {week} ({format.value}) written to stdout")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(stored.content, encoding="utf-8")
    console.print(f"digest {week} ({format.value}): {out.resolve()}")


# --- demo ---------------------------------------------------------------------------------------

DEMO_FILES = {
    "outputs": ["model_outputs.jsonl", "history/model_outputs.jsonl"],
    "feedback": ["labelled.jsonl", "history/feedback.jsonl"],
}
# The fixtures' history ends with this ISO week; the demo moves it to the last complete week.
FIXTURES_LAST_MONDAY = date(2026, 11, 16)


def demo_shift(today: date) -> timedelta:
    last_complete_monday = today - timedelta(days=today.weekday() + 7)
    return last_complete_monday - FIXTURES_LAST_MONDAY


@app.command()
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


if __name__ == "__main__":
    app()
