"""Each ticket's own category: category, category_confidence, category_evidence on feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("category_confidence", sa.Float(), nullable=True))
        # Existing tickets get an empty list, so the column can be NOT NULL like issue.evidence;
        # the next refresh fills them in.
        batch_op.add_column(
            sa.Column(
                "category_evidence", sa.JSON(), nullable=False, server_default=sa.text("'[]'")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("category_evidence")
        batch_op.drop_column("category_confidence")
        batch_op.drop_column("category")
