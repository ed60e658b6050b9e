"""tasks.request_key: what a waiting request asked for (a hash of its upload and its
options), so that the same request made again is answered from this task instead of
transcribing again (whisper-asr-webservice's `/asr`, whose clients time out and retry).

NULL for tasks made any other way.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("request_key", sa.String(64), nullable=True))
        batch.create_index("ix_tasks_request_key", ["request_key"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_request_key")
        batch.drop_column("request_key")
