"""Quotas per API key: api_keys.minutes_per_day (audio a key may submit per UTC day)
and api_keys.max_running (its tasks queued or running at once). NULL: no limit, as
for every key made before this revision.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("minutes_per_day", sa.Float(), nullable=True))
        batch.add_column(sa.Column("max_running", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("max_running")
        batch.drop_column("minutes_per_day")
