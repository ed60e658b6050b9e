"""Transcript editing and honest progress.

- `transcript_edits`: one row per revision of a task's transcript, made by an editor
  (segment text, speaker reassignment, speaker names) or by undoing one. The machine's
  transcript stays as it was in the store; the current one is it with every revision
  applied in order. `(task_id, revision)` is the key, so two editors who both read
  revision N cannot both write N + 1.
- `tasks.error_code`: the error tree's code of a failed task's reason, so that a page
  can word it in its reader's language.
- `tasks.expected_end_at`: when the worker expects the running task to finish, so that
  every view counts the time left down between progress reports.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("error_code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("expected_end_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "transcript_edits",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("revision", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("speaker_names", sa.JSON(), nullable=False),
        sa.Column("undoes", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("transcript_edits")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("expected_end_at")
        batch.drop_column("error_code")
