"""Stage "ingest": read tickets and model outputs from files, validate, store idempotently.

The HTTP API validates with the same models and stores with the same ``store`` functions; this
module adds what files need: line numbers in errors, CSV column mapping, chunked transactions.
A bad line is reported and skipped; every good line is stored.
"""

from __future__ import annotations

import codecs
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
from triage.models import FeedbackCreate, ItemResult, ModelOutputCreate, unknown_field_warnings

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
    # Stored lines with fields the model does not have (a typo, most often): reported, not fatal.
    warnings: list[LineError] = field(default_factory=list)


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV export: the columns that hold what, and its dialect."""

    text_column: str = "text"
    id_column: str = "id"
    source: str | None = None  # the file's name without extension when unset
    date_column: str | None = None
    customer_column: str | None = None
    user_column: str | None = None
    delimiter: str | None = None  # found from the header line when unset


def _explain(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in error.errors()
    )


def text_encoding(name: str) -> str:
    """The codec to open a file with; UTF-8 as utf-8-sig, so an Excel BOM never becomes part
    of the first column's name."""
    try:
        codec = codecs.lookup(name).name
    except LookupError as e:
        raise InvalidInputError(
            f"Unknown encoding {name!r}; common ones are utf-8, cp1252 and latin-1."
        ) from e
    return "utf-8-sig" if codec == "utf-8" else codec


def check_encoding(path: Path, encoding: str) -> None:
    """Refuse a file that does not decode, before anything is stored: replacement characters
    ("R\ufffdsum\ufffd") would be stored, clustered and quoted as if the customer wrote them."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 1
    with path.open("rb") as handle:
        try:
            for raw in handle:
                decoder.decode(raw)
                number += 1
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            bad = e.object[e.start : e.start + 4]
            raise InvalidInputError(
                f"{path} is not {encoding} text: line {number} has the bytes {bad!r}. Name the "
                "file's encoding with --encoding, e.g. cp1252 (Excel on Windows) or latin-1."
            ) from e


def sniff_delimiter(header: str) -> str:
    """The delimiter of a CSV from its header line: the candidate it has most of. The header
    and not the rows, whose free text is full of commas."""
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_jsonl(
    path: Path, *, encoding: str = "utf-8-sig"
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, object or error message) for each non-blank line."""
    with path.open(encoding=encoding) as handle:
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
    path: Path, options: CsvOptions, *, encoding: str = "utf-8-sig"
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Map a CSV export to feedback: named columns for text, id, date, customer and user, known
    fields by name, and every other column into ``metadata``."""
    with path.open(encoding=encoding, newline="") as handle:
        delimiter = options.delimiter or sniff_delimiter(handle.readline())
        handle.seek(0)
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        # Each named column and the field it fills.
        named = {
            options.text_column: ("text", "--text-column"),
            options.id_column: ("external_id", "--id-column"),
            options.date_column: ("created_at", "--date-column"),
            options.customer_column: ("customer_id", "--customer-column"),
            options.user_column: ("user_id", "--user-column"),
        }
        for column, (_, flag) in named.items():
            if column is not None and column not in columns:
                raise InvalidInputError(
                    f"{path} has no column {column!r}; its columns are {', '.join(columns)} "
                    f"(read with delimiter {delimiter!r}; --delimiter sets another). Name the "
                    f"right one with {flag}."
                )
        for number, row in enumerate(reader, start=2):
            record: dict[str, Any] = {"source": row.get("source") or options.source or path.stem}
            for column, (name, _) in named.items():
                if column is not None and row.get(column) not in (None, ""):
                    record[name] = row[column]
            record.setdefault("text", "")
            record.setdefault("external_id", "")
            extra = {}
            for key, value in row.items():
                if key in named or key == "source" or value in (None, ""):
                    continue
                if key in FEEDBACK_FIELDS and key != "metadata":
                    record.setdefault(key, value)  # a column named by an option wins
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
            item = kind.model_validate(record)
        except ValidationError as e:
            report.errors.append(LineError(number, _explain(e)))
        else:
            chunk.append((number, item))
            report.warnings.extend(
                LineError(number, f"{w.field}: {w.message}")
                for w in unknown_field_warnings(item)  # type: ignore[arg-type]
            )
        if len(chunk) >= CHUNK:
            flush()
    flush()
    return report


def _store_chunk(
    engine: Engine, chunk: list[tuple[int, Any]], *, kind: type[BaseModel], report: IngestReport
) -> None:
    if kind is FeedbackCreate:
        # Tickets answer per item: a conflicting line is reported, the others are stored.
        with db.session_scope(engine) as session:
            results = store.add_feedback_items(session, items=[item for _, item in chunk])
        for (number, _), result in zip(chunk, results, strict=True):
            if result.result is ItemResult.conflict:
                report.errors.append(LineError(number, _conflict_message(result.fields)))
            elif result.duplicate:
                report.duplicates += 1
            else:
                report.stored += 1
        return
    add = store.add_model_outputs
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


def _conflict_message(fields: list[str]) -> str:
    return (
        f"(source, external_id) is already stored with other values ({', '.join(fields)}); "
        "feedback is immutable: send it unchanged, or under a new external_id."
    )


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
    csv_options: CsvOptions | None = None,
    encoding: str = "utf-8",
    progress: Callable[[int], None] | None = None,
    shift: timedelta | None = None,
) -> IngestReport:
    """JSONL by default; CSV when ``csv_options`` is given or the file ends in ``.csv``. A file
    that does not decode in ``encoding`` is refused whole, before anything is stored."""
    codec = text_encoding(encoding)
    check_encoding(path, codec)
    if csv_options is not None or path.suffix.lower() == ".csv":
        records = read_csv(path, csv_options or CsvOptions(), encoding=codec)
    else:
        records = read_jsonl(path, encoding=codec)
    return ingest_records(engine, records, kind=FeedbackCreate, progress=progress, shift=shift)


def ingest_outputs_file(
    engine: Engine,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    shift: timedelta | None = None,
) -> IngestReport:
    check_encoding(path, "utf-8-sig")
    return ingest_records(
        engine, read_jsonl(path), kind=ModelOutputCreate, progress=progress, shift=shift
    )


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
