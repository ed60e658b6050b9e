"""Checkpoints in linear space: one row per finished batch of speech windows
(task_checkpoints), appended and read only when a task resumes, instead of the whole
transcript so far rewritten into tasks.checkpoint after every batch and read with
every task view.

A checkpoint held by tasks.checkpoint is carried over as the task's first row.
Downgrading drops the rows: a task that was running resumes from the start.

Revision ID: 0006
Revises: 0005
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    steps = op.create_table(
        "task_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), nullable=False, index=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    tasks = sa.table("tasks", sa.column("id", sa.String), sa.column("checkpoint", sa.JSON))
    conn = op.get_bind()
    held = conn.execute(
        sa.select(tasks.c.id, tasks.c.checkpoint).where(tasks.c.checkpoint.is_not(None))
    )
    now = datetime.now(UTC)
    rows = [
        {"task_id": task_id, "data": json.dumps(data, ensure_ascii=False), "created_at": now}
        for task_id, data in held
        if data
    ]
    if rows:
        op.bulk_insert(steps, rows)
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("checkpoint")


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("checkpoint", sa.JSON(), nullable=True))
    op.drop_table("task_checkpoints")
