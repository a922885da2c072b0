"""Stage "ingest": read tickets and model outputs from files, validate, store idempotently.

The HTTP API validates with the same models and stores with the same ``store`` functions; this
module adds what files need: line numbers in errors, CSV column mapping, chunked transactions.
A bad line is reported and skipped; every good line is stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from triage import db, store
from triage.errors import ConflictError, InvalidInputError
from triage.models import FeedbackCreate, ModelOutputCreate

CHUNK = 500
FEEDBACK_FIELDS = set(FeedbackCreate.model_fields) | {"metadata"}


@dataclass
class LineError:
    line: int
    message: str


@dataclass
class IngestReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)


def _explain(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in error.errors()
    )


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, object or error message) for each non-blank line."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                yield number, f"not valid JSON: {e.msg} at column {e.colno}"
                continue
            yield number, value if isinstance(value, dict) else "expected a JSON object"


def read_csv(
    path: Path, *, text_column: str, id_column: str, source: str
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Map a CSV export to feedback: named columns for text and id, known fields by name, and
    every other column into ``metadata``."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in (text_column, id_column):
            if needed not in columns:
                raise InvalidInputError(
                    f"{path} has no column {needed!r}; its columns are {', '.join(columns)}. "
                    "Name the right ones with --text-column and --id-column."
                )
        for number, row in enumerate(reader, start=2):
            record: dict[str, Any] = {
                "source": row.get("source") or source,
                "external_id": row[id_column],
                "text": row[text_column],
            }
            extra = {}
            for key, value in row.items():
                if key in (text_column, id_column, "source") or value in (None, ""):
                    continue
                if key in FEEDBACK_FIELDS and key != "metadata":
                    record[key] = value
                else:
                    extra[key] = value
            if extra:
                record["metadata"] = extra
            yield number, record


def _shift(value: Any, delta: timedelta) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if len(value) == 10:  # a plain date, as sources' as_of often are
            return (date.fromisoformat(value) + delta).isoformat()
        return (datetime.fromisoformat(value) + delta).isoformat()
    except ValueError:
        return value


def shift_dates(record: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """Move a record's timestamps (and its sources' ``as_of``) by ``delta``, keeping every
    interval between them. The demo uses it to make the fixtures' last week the last week."""
    shifted = dict(record)
    if "created_at" in shifted:
        shifted["created_at"] = _shift(shifted["created_at"], delta)
    meta = shifted.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("sources"), list):
        sources = [
            {**s, "as_of": _shift(s.get("as_of"), delta)} if isinstance(s, dict) else s
            for s in meta["sources"]
        ]
        shifted["metadata"] = {**meta, "sources": sources}
    return shifted


def ingest_records(
    engine: Engine,
    records: Iterator[tuple[int, dict[str, Any] | str]],
    *,
    kind: type[BaseModel],
    progress: Callable[[int], None] | None = None,
    shift: timedelta | None = None,
) -> IngestReport:
    report = IngestReport()
    chunk: list[tuple[int, Any]] = []

    def flush() -> None:
        if chunk:
            _store_chunk(engine, chunk, kind=kind, report=report)
            if progress is not None:
                progress(len(chunk))
            chunk.clear()

    for number, record in records:
        report.read += 1
        if isinstance(record, str):
            report.errors.append(LineError(number, record))
            continue
        if shift:
            record = shift_dates(record, shift)
        try:
            chunk.append((number, kind.model_validate(record)))
        except ValidationError as e:
            report.errors.append(LineError(number, _explain(e)))
        if len(chunk) >= CHUNK:
            flush()
    flush()
    return report


def _store_chunk(
    engine: Engine, chunk: list[tuple[int, Any]], *, kind: type[BaseModel], report: IngestReport
) -> None:
    add = store.add_feedback if kind is FeedbackCreate else store.add_model_outputs
    try:
        with db.session_scope(engine) as session:
            accepted = add(session, items=[item for _, item in chunk])
    except ConflictError:
        # One conflicting line must not cost the others: store them one at a time instead.
        for number, item in chunk:
            try:
                with db.session_scope(engine) as session:
                    accepted = add(session, items=[item])
            except ConflictError as e:
                report.errors.append(LineError(number, e.message))
                continue
            _count(accepted, report)
        return
    _count(accepted, report)


def _count(accepted: list[Any], report: IngestReport) -> None:
    for line in accepted:
        if line.duplicate:
            report.duplicates += 1
        else:
            report.stored += 1


def ingest_feedback_file(
    engine: Engine,
    path: Path,
    *,
    csv_columns: tuple[str, str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    shift: timedelta | None = None,
) -> IngestReport:
    """JSONL by default; CSV when ``csv_columns`` = (text column, id column, source) is given."""
    if csv_columns is not None or path.suffix.lower() == ".csv":
        text_column, id_column, source = csv_columns or ("text", "id", path.stem)
        records = read_csv(path, text_column=text_column, id_column=id_column, source=source)
    else:
        records = read_jsonl(path)
    return ingest_records(engine, records, kind=FeedbackCreate, progress=progress, shift=shift)


def ingest_outputs_file(
    engine: Engine,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    shift: timedelta | None = None,
) -> IngestReport:
    return ingest_records(
        engine, read_jsonl(path), kind=ModelOutputCreate, progress=progress, shift=shift
    )


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
