"""PostgreSQL's monthly partitions of ``model_output`` (the layout: migration 0007): making the
coming months' partitions, and dropping an old month's once the outputs that must outlive it
are moved to the kept partition. SQLite has one plain table; there everything here is a no-op.

Arrival (``received_at``) is the server's clock, so new outputs land in the current month's
partition; months two ahead are made by the roll-up and the prune, never by an insert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    column,
    delete,
    false,
    table,
    text,
    update,
)
from sqlmodel import Session, col, select

from triage.models import ModelOutput, utcnow

logger = logging.getLogger(__name__)

LIVE = "model_output_live"
DEFAULT = f"{LIVE}_default"
AHEAD_MONTHS = 2
# Distinct from the issue locks (7273, 7274) and the output inserts' (7275).
PARTITIONS_LOCK_KEY = 7276
# How long a drop waits for the inserts in flight (its DROP locks the table for an instant);
# past that the month is left to the row-by-row prune.
DROP_LOCK_WAIT_MS = 5000

# As PostgreSQL's autovacuum_analyze_scale_factor: statistics a tenth behind still plan well.
ANALYZE_SHARE = 0.1
# What UNIQUE(output_id) and the link's foreign key are on a partitioned table, which can hold
# neither; not in SQLModel's metadata, as SQLite has no such table. Whatever deletes outputs
# deletes their keys too (``forget_keys``, ``drop_month``), or a resend would find a key and
# no output.
OUTPUT_KEY = Table(
    "model_output_key",
    MetaData(),
    Column("output_id", String(255), primary_key=True),
    Column("id", Integer, nullable=False, unique=True),
)
# The columns the ORM's ModelOutput lacks (``kept`` is PostgreSQL's alone), for the move.
_PARTITIONED = table(
    "model_output",
    column("id", Integer),
    column("received_at", DateTime(timezone=True)),
    column("kept", Boolean),
)
_MONTH_NAME = re.compile(rf"{LIVE}_(\d{{4}})_(\d{{2}})")


@dataclass(frozen=True, order=True)
class Month:
    """One calendar month of arrivals (UTC): ``[start, end)``."""

    start: datetime

    @classmethod
    def of(cls, when: datetime) -> Month:
        return cls(datetime(when.year, when.month, 1, tzinfo=UTC))

    @property
    def end(self) -> datetime:
        year, month = divmod(self.start.month, 12)
        return datetime(self.start.year + year, month + 1, 1, tzinfo=UTC)

    @property
    def name(self) -> str:
        return f"{LIVE}_{self.start:%Y_%m}"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def partitioned(session: Session) -> bool:
    """True on PostgreSQL from revision 0007 on."""
    return (
        _postgres(session)
        and session.execute(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": LIVE}
        ).scalar_one()
    )


def month_partitions(session: Session) -> list[Month]:
    """The month partitions there are, oldest first."""
    names = session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:live AS regclass)"
        ),
        {"live": LIVE},
    ).scalars()
    found = [_MONTH_NAME.fullmatch(name) for name in names]
    return sorted(Month(datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC)) for m in found if m)


def ensure_partitions(session: Session, *, now: datetime | None = None) -> list[Month]:
    """Make the partitions of this month and the next ``AHEAD_MONTHS`` that are missing; the
    months made. A month whose arrivals already sit in the default partition is left there (a
    new partition may not overlap what the default holds): the prune deletes them row by row."""
    if not partitioned(session):
        return []
    month = Month.of(now or utcnow())
    wanted = [month]
    for _ in range(AHEAD_MONTHS):
        wanted.append(Month(wanted[-1].end))
    if not set(wanted) - set(month_partitions(session)):
        return []
    # Two processes making the same month: the second finds it made.
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITIONS_LOCK_KEY})
    made = []
    for month in sorted(set(wanted) - set(month_partitions(session))):
        bounds = {"start": month.start, "end": month.end}
        if session.execute(
            text(f"SELECT 1 FROM {DEFAULT} WHERE received_at >= :start AND received_at < :end "
                 "LIMIT 1"), bounds,
        ).first():  # fmt: skip
            logger.warning("%s not made: the default partition holds its outputs", month.name)
            continue
        session.execute(
            text(
                f"CREATE TABLE {month.name} PARTITION OF {LIVE} "
                f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
            )
        )
        made.append(month)
    if made:
        logger.info("made partitions %s", ", ".join(m.name for m in made))
    return made


def months_before(session: Session, *, cutoff: datetime) -> list[Month]:
    """The month partitions whose whole range is older than ``cutoff``, oldest first."""
    if not partitioned(session):
        return []
    return [month for month in month_partitions(session) if month.end <= cutoff]


def keep_rows(session: Session, *, month: Month, where: ColumnElement[bool]) -> int:
    """Move the outputs of ``month`` matching ``where`` to the kept partition (PostgreSQL moves
    a row whose partition key an UPDATE changes), where they outlive their month's partition;
    how many moved."""
    arrived = col(ModelOutput.received_at)
    chosen = select(ModelOutput.id).where(arrived >= month.start, arrived < month.end, where)
    result = session.execute(
        update(_PARTITIONED)
        .where(
            _PARTITIONED.c.kept == false(),
            _PARTITIONED.c.received_at >= month.start,
            _PARTITIONED.c.received_at < month.end,
            _PARTITIONED.c.id.in_(chosen),
        )
        .values(kept=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def highest_id(session: Session, *, month: Month) -> int:
    """The highest output id in ``month``'s partition; 0 when it is empty."""
    return int(session.execute(text(f"SELECT max(id) FROM {month.name}")).scalar() or 0)


def drop_month(session: Session, *, month: Month) -> int:
    """Drop ``month``'s partition and its outputs' keys; how many outputs went. What must stay
    is moved out first (``keep_rows``), in the same transaction; a link to an output still
    there fails the keys' delete (the link's foreign key), so nothing linked goes unseen."""
    session.execute(text(f"SET LOCAL lock_timeout = {DROP_LOCK_WAIT_MS}"))
    gone = session.execute(
        text(f"DELETE FROM model_output_key WHERE id IN (SELECT id FROM {month.name})")
    ).rowcount  # type: ignore[attr-defined]
    session.execute(text(f"DROP TABLE {month.name}"))
    return int(gone)


def forget_keys(session: Session, *, ids: Sequence[int]) -> None:
    """After deleting outputs row by row: free their output_ids (PostgreSQL from 0007)."""
    if ids and _postgres(session):
        session.execute(delete(OUTPUT_KEY).where(OUTPUT_KEY.c.id.in_(ids)))


def analyze_outputs(session: Session, *, added: int) -> bool:
    """After ``added`` outputs were rolled up: ANALYZE ``model_output`` (every partition, and the
    partitioned table itself, which autovacuum never analyzes) and ``output_rollup`` when
    ``added`` is more than a tenth of the outputs their statistics count; whether it did
    (PostgreSQL; a no-op on SQLite).

    The refresh reads outputs by id (linked ones, those above the watermark), planned from these
    statistics. A partition last analyzed empty, as migration 0007 leaves a new database and a
    backfill leaves it until autovacuum comes round (never, where it is off), is planned as if
    most rows matched: each read scanned the month's whole partition instead of its primary
    key, 0.18 s instead of 4 ms for 500 ids at 1M outputs (issue 17)."""
    if not added or not _postgres(session):
        return False
    counted = session.execute(
        text(
            "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) "
            "FROM pg_partition_tree('model_output') t JOIN pg_class c ON c.oid = t.relid "
            "WHERE t.isleaf"
        )
    ).scalar_one()
    if added <= ANALYZE_SHARE * float(counted):
        return False
    session.execute(text("ANALYZE model_output, output_rollup"))
    return True
