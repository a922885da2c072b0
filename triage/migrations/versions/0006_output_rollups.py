"""Traffic rollups: every model output counted and sketched per day, model, version and feature
(``output_rollup``), and how far they have read (``rollup_watermark``), so a refresh reads the
rollups instead of every output and a pruned output still counts in traffic. Existing outputs are
rolled up by the first refresh after this revision (the watermark starts at 0).

Also an index on the trace id an output logged from a trace keeps in its metadata: linking a
ticket that names a trace id looked it up by scanning every output's JSON. The indexed
expression is the one ``store.link_candidates`` compiles to on each database, so the planner
uses it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# ``col(ModelOutput.meta)[TRACE_ID_PATH].as_string()`` as SQLAlchemy compiles it.
TRACE_ID = {
    "postgresql": "(CAST((metadata #>> '{otel,trace_id}') AS VARCHAR))",
    "sqlite": """CAST(JSON_EXTRACT(metadata, '$."otel"."trace_id"') AS VARCHAR)""",
}


def _dialect() -> str:
    return "postgresql" if op.get_bind().dialect.name == "postgresql" else "sqlite"


def upgrade() -> None:
    op.create_table(
        "output_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sketch", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "day", "model", "model_version", "feature", name="uq_output_rollup_key"
        ),
    )
    op.create_table(
        "rollup_watermark",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_output_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(f"CREATE INDEX ix_model_output_trace_id ON model_output ({TRACE_ID[_dialect()]})")


def downgrade() -> None:
    op.execute("DROP INDEX ix_model_output_trace_id")
    op.drop_table("rollup_watermark")
    op.drop_table("output_rollup")
