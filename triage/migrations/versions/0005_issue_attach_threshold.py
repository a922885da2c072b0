"""Each issue keeps the attachment threshold its re-clustering calibrated on its members, so new
units join it between re-clusterings by the same test (``issue.attach_threshold``; NULL, as
for every issue before this revision, means the global ``TRIAGE_CLUSTER_ASSIGN_THRESHOLD``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attach_threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.drop_column("attach_threshold")
