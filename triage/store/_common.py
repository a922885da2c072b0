"""Helpers the query modules share: dialect-aware inserts, paging, idempotent batches."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Table, cast, func, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, select

from triage.models import as_utc


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def table_of(model: type[SQLModel]) -> Table:
    """A table model's ``Table``, for Core statements; SQLModel's types leave ``__table__`` out."""
    return model.__table__  # type: ignore[attr-defined]


def dialect_insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def paginate(
    session: Session,
    model: Any,
    conditions: list[Any],
    order: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """One page of ``model`` rows matching ``conditions``, and how many match in all."""
    total = session.exec(select(func.count()).select_from(model).where(*conditions)).one()
    rows = session.exec(
        select(model).where(*conditions).order_by(*order).offset(offset).limit(limit)
    ).all()
    return list(rows), int(total)


@dataclass(frozen=True)
class Stored:
    """What became of one sent row: the stored row it matches (id, status), whether that row
    was already there, and the fields that differ from it (a conflict; nothing was written)."""

    stored: Mapping[str, Any]
    duplicate: bool
    conflict: tuple[str, ...]
    # False when the stored row was written by this same request: a caller that rolls back
    # must not name its id.
    prior: bool


def _same(sent: Any, stored: Any) -> bool:
    # SQLite hands datetimes back naive; both sides are UTC.
    if isinstance(sent, datetime) and isinstance(stored, datetime):
        return as_utc(sent) == as_utc(stored)
    return bool(sent == stored)


def _claim(
    session: Session, claims: Table, *, rows: list[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Claim the rows' keys in ``claims``: the first row of each key it had not, with its id."""
    # One array parameter, not one per row: the statement is the same text for every batch.
    # Sorted, so two batches sharing keys wait for each other in one order, never deadlock.
    wanted = sorted({row[key] for row in rows})
    sent = select(func.unnest(cast(wanted, ARRAY(claims.c[key].type))))
    claimed = session.execute(
        postgresql.insert(claims)
        .from_select([key], sent)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(claims.c[key], claims.c.id)
    )
    ids = dict(claimed.tuples().all())
    return [{**row, "id": ids.pop(row[key])} for row in rows if row[key] in ids]


def insert_idempotent(
    session: Session,
    *,
    table: Any,
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    digest: str,
    compare: tuple[str, ...] = (),
    claim_in: Table | None = None,
) -> list[Stored]:
    """Insert the rows whose ``keys`` are new, and read back those that were there already; one
    answer per row.

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` makes concurrent identical requests safe:
    exactly one row is written, every request reads it back, and RETURNING names only the rows
    this statement wrote, so "duplicate" stays exact even when identical requests race. A row
    whose key is stored with another ``digest`` or other ``compare`` values is a conflict: a
    retry that changed the payload must not pass for a duplicate and silently keep old values.

    RETURNING carries everything an answer needs, so new rows (the common case) cost one
    statement: on PostgreSQL a single new ticket is then one round trip, not two.

    ``claim_in`` (PostgreSQL): a table of the keys and ids that keeps the keys unique where
    ``table`` cannot (a partitioned table's unique constraints must hold its partition keys);
    the keys are claimed there first, the same way, and only the rows whose keys it returns
    are inserted, with the ids it gave them. One statement more, still one per table.
    """
    key_columns = [table.c[k] for k in keys]
    # Not the whole row: a batch of long texts would be read back for nothing.
    read_back = [*key_columns, table.c.id, table.c[digest], *(table.c[c] for c in compare)]
    if "status" in table.c:
        read_back.append(table.c.status)
    if claim_in is None:
        statement = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=list(keys))
            .returning(*read_back)
        )
        written = list(session.execute(statement, rows).mappings())
    else:
        [claimed] = keys
        new_rows = _claim(session, claim_in, rows=rows, key=claimed)
        written = []
        if new_rows:
            statement = postgresql.insert(table).returning(*read_back)
            written = list(session.execute(statement, new_rows).mappings())
    inserted = {tuple(r[k] for k in keys): r for r in written}
    stored = dict(inserted)
    missing = [k for k in dict.fromkeys(tuple(row[k] for k in keys) for row in rows)
               if k not in inserted]  # fmt: skip
    key_expression = tuple_(*key_columns) if len(keys) > 1 else key_columns[0]
    # Chunked so a 1,000-item batch stays well under every driver's parameter limit.
    for start in range(0, len(missing), 400):
        chunk = missing[start : start + 400]
        values = chunk if len(keys) > 1 else [key[0] for key in chunk]
        found = session.execute(select(*read_back).where(key_expression.in_(values))).mappings()
        stored.update({tuple(r[k] for k in keys): r for r in found})

    answers, seen = [], set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        match = stored[key]
        differ = tuple(c for c in (digest, *compare) if not _same(row[c], match[c]))
        duplicate = not differ and (key not in inserted or key in seen)
        answers.append(Stored(dict(match), duplicate, differ, prior=key not in inserted))
        if not differ:
            seen.add(key)
    return answers
