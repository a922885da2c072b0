"""The merge of every rollup row's sketch, kept beside the watermark (``rollup_watermark.sketch``),
so a refresh reads one sketch instead of parsing and merging every rollup row's (issue 17).

NULL, as for the watermark row before this revision, means "not made yet": the next roll-up makes
it from the rollup rows (``triage.rollups.roll_up``) and until then ``load_traffic`` merges the
rows as before, so an upgraded database gives the same traffic profile throughout.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rollup_watermark", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sketch", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollup_watermark", schema=None) as batch_op:
        batch_op.drop_column("sketch")
