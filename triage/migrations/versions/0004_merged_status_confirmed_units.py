"""Corrections that leave a consistent state: issues merged away get status ``merged`` (they
already point to their survivor through ``merged_into``), and ``unit.confirmed_category`` holds
the category a person confirmed for a statement, the only training labels corrections give.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "confirmed_category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
            )
        )
    # Issues merged before this revision kept their old status.
    op.execute("UPDATE issue SET status = 'merged' WHERE merged_into IS NOT NULL")
    # Corrections made before trained on every statement of the corrected issue, which is what
    # this revision stops: no statement was confirmed one by one, so none is labelled here.


def downgrade() -> None:
    op.execute("UPDATE issue SET status = 'open' WHERE status = 'merged'")
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_column("confirmed_category")
