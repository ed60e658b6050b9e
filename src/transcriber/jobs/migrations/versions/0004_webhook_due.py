"""Webhooks survive a crash: tasks.webhook_due_at, when a delivery is owed.

Set in the same UPDATE that finishes a task whose options name a webhook, so a
process that dies right after finishing still leaves the delivery on record. A
sender claims it by moving the time forward by a lease; recording the answer clears
it. NULL: nothing owed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("webhook_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tasks_webhook_due_at", ["webhook_due_at"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_webhook_due_at")
        batch.drop_column("webhook_due_at")
