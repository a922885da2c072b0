"""What each refresh decided from, so the next one only redoes what changed (issue 17).

``feedback.category_key``: a digest of everything a ticket's category was decided from (the
categorizer, its statements, its linked outputs' signals and context), and
``feedback.category_probabilities``, so an unchanged ticket keeps its decision without being
decided again. ``issue.refresh_key``: the same for an issue's labels, category and priority.
NULL, as for every row before this revision, means "decide again".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("category_probabilities", sa.JSON(), nullable=True))
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refresh_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_column("refresh_key")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("category_probabilities")
        batch_op.drop_column("category_key")
