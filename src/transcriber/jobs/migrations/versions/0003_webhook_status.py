"""Webhooks: tasks.webhook_status, what the client's server answered the last delivery.

NULL while nothing was delivered, the HTTP status code once it answered, 0 when it
could not be reached at all.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("webhook_status", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("webhook_status")
