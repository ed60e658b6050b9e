"""Leases: tasks.heartbeat_at, refreshed while a worker holds the task.

No index: only a handful of rows are `processing` (the status index finds them),
and an index on a column rewritten every few seconds would cost every heartbeat
on PostgreSQL (no HOT update).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("heartbeat_at")
