"""On PostgreSQL, ``model_output`` is partitioned by month of arrival, so a prune drops a month's
partition instead of deleting its rows one by one (issue 17); SQLite keeps the plain table.

    model_output                PARTITION BY LIST (kept)
      model_output_kept         kept: outputs that outlive their month (linked, named by a ticket)
      model_output_live         not kept, PARTITION BY RANGE (received_at)
        model_output_live_YYYY_MM   one calendar month (UTC)
        model_output_live_default   any other arrival time
    model_output_key            output_id PRIMARY KEY, id UNIQUE

A partitioned table's unique constraints must contain its partition keys, so neither
UNIQUE(output_id) nor the link's foreign key can be on ``model_output`` any more: the key table
holds both. Ingestion claims keys there first (``store.add_model_outputs``), and an insert that
did not (a tool, a test) gets them from a statement trigger, which refuses an output_id already
stored under another id, as the unique constraint did. Rows are copied, ids and the id sequence
kept; months from the oldest row's to two ahead are made here, later ones by
``store.ensure_partitions``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As 0006 made it; the expression must stay the one ``store.link_candidates`` compiles to.
TRACE_ID = "(CAST((metadata #>> '{otel,trace_id}') AS VARCHAR))"
AHEAD_MONTHS = 2

# Claimed already, the common case, costs one probe of the key table per row.
CLAIM_KEYS = """
CREATE FUNCTION model_output_claim_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM added LEFT JOIN model_output_key k USING (output_id)
                   WHERE k.id IS DISTINCT FROM added.id) THEN
        RETURN NULL;
    END IF;
    INSERT INTO model_output_key (output_id, id)
    SELECT output_id, id FROM added ON CONFLICT (output_id) DO NOTHING;
    IF EXISTS (SELECT 1 FROM added JOIN model_output_key k USING (output_id)
               WHERE k.id <> added.id) THEN
        RAISE unique_violation USING
            MESSAGE = 'duplicate key value violates unique constraint "uq_model_output_output_id"',
            CONSTRAINT = 'uq_model_output_output_id';
    END IF;
    RETURN NULL;
END $$
"""


def _months(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    first = first.astimezone(UTC)  # months are UTC's; the server's time zone may be another
    months, start = [], datetime(first.year, first.month, 1, tzinfo=UTC)
    while start <= last:
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
        months.append((start, end))
        start = end
    return months


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The old table keeps its rows until copied; its constraint and index names are freed first.
    op.execute("ALTER TABLE link DROP CONSTRAINT link_model_output_id_fkey")
    op.execute("ALTER TABLE model_output RENAME TO model_output_plain")
    op.execute("ALTER TABLE model_output_plain DROP CONSTRAINT model_output_pkey")
    op.execute("ALTER TABLE model_output_plain DROP CONSTRAINT uq_model_output_output_id")
    for index in ("ix_model_output_user_created", "ix_model_output_session_created",
                  "ix_model_output_trace_id"):  # fmt: skip
        op.execute(f"DROP INDEX {index}")
    # INCLUDING DEFAULTS keeps id's default: the same sequence, at the same value.
    op.execute(
        "CREATE TABLE model_output (LIKE model_output_plain INCLUDING DEFAULTS, "
        "kept boolean NOT NULL DEFAULT false, PRIMARY KEY (id, kept, received_at)) "
        "PARTITION BY LIST (kept)"
    )
    op.execute("ALTER SEQUENCE model_output_id_seq OWNED BY model_output.id")
    op.execute("CREATE TABLE model_output_kept PARTITION OF model_output FOR VALUES IN (true)")
    op.execute(
        "CREATE TABLE model_output_live PARTITION OF model_output FOR VALUES IN (false) "
        "PARTITION BY RANGE (received_at)"
    )
    op.execute("CREATE TABLE model_output_live_default PARTITION OF model_output_live DEFAULT")
    now = datetime.now(UTC)
    oldest = op.get_bind().execute(text("SELECT min(received_at) FROM model_output_plain"))
    first = oldest.scalar() or now
    last = datetime(now.year + (now.month + AHEAD_MONTHS - 1) // 12,
                    (now.month + AHEAD_MONTHS - 1) % 12 + 1, 1, tzinfo=UTC)  # fmt: skip
    for start, end in _months(first, last):
        op.execute(
            f"CREATE TABLE model_output_live_{start:%Y_%m} PARTITION OF model_output_live "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    op.execute(
        "CREATE TABLE model_output_key (output_id varchar(255) PRIMARY KEY, "
        "id integer NOT NULL DEFAULT nextval('model_output_id_seq') UNIQUE)"
    )
    op.execute(
        "INSERT INTO model_output_key (output_id, id) SELECT output_id, id FROM model_output_plain"
    )
    op.execute("INSERT INTO model_output SELECT *, false FROM model_output_plain")
    op.execute("DROP TABLE model_output_plain")
    # Indexed after the copy: one sort each instead of a row-by-row insert into each.
    op.execute("CREATE INDEX ix_model_output_output_id ON model_output (output_id)")
    op.execute("CREATE INDEX ix_model_output_user_created ON model_output (user_id, created_at)")
    op.execute(
        "CREATE INDEX ix_model_output_session_created ON model_output (session_id, created_at)"
    )
    op.execute(f"CREATE INDEX ix_model_output_trace_id ON model_output ({TRACE_ID})")
    op.execute(
        "ALTER TABLE link ADD CONSTRAINT link_model_output_id_fkey FOREIGN KEY "
        "(model_output_id) REFERENCES model_output_key (id)"
    )
    op.execute(CLAIM_KEYS)
    op.execute(
        "CREATE TRIGGER model_output_claim_keys AFTER INSERT ON model_output "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION model_output_claim_keys()"
    )
    op.execute("ANALYZE model_output")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE link DROP CONSTRAINT link_model_output_id_fkey")
    op.execute("DROP TRIGGER model_output_claim_keys ON model_output")
    op.execute("DROP FUNCTION model_output_claim_keys()")
    op.execute("CREATE TABLE model_output_plain (LIKE model_output INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE model_output_plain DROP COLUMN kept")
    op.execute("ALTER SEQUENCE model_output_id_seq OWNED BY model_output_plain.id")
    columns = ", ".join(
        op.get_bind()
        .execute(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'model_output_plain'::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            )
        )
        .scalars()
    )
    op.execute(
        f"INSERT INTO model_output_plain ({columns}) SELECT {columns} FROM model_output ORDER BY id"
    )
    op.execute("DROP TABLE model_output")
    op.execute("DROP TABLE model_output_key")
    op.execute("ALTER TABLE model_output_plain RENAME TO model_output")
    op.execute("ALTER TABLE model_output ADD CONSTRAINT model_output_pkey PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE model_output ADD CONSTRAINT uq_model_output_output_id UNIQUE (output_id)"
    )
    op.execute("CREATE INDEX ix_model_output_user_created ON model_output (user_id, created_at)")
    op.execute(
        "CREATE INDEX ix_model_output_session_created ON model_output (session_id, created_at)"
    )
    op.execute(f"CREATE INDEX ix_model_output_trace_id ON model_output ({TRACE_ID})")
    op.execute(
        "ALTER TABLE link ADD CONSTRAINT link_model_output_id_fkey FOREIGN KEY "
        "(model_output_id) REFERENCES model_output (id)"
    )
