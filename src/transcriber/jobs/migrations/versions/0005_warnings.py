"""tasks.warnings: what a completed task's transcript warns of (its notices), so that
`GET /api/tasks/{id}` and the webhook show them without the transcript being read.

NULL for tasks finished before this revision, and for tasks not finished.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("warnings")
