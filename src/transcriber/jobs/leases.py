"""Claims as leases, for workers in several processes sharing one database.

Taking a task is a conditional UPDATE from `queued`; on PostgreSQL the candidate
row is also locked with SKIP LOCKED, so concurrent claimers pass each other by
instead of queueing on the same row. The holder renews `heartbeat_at`; a task
whose holder has gone quiet is taken back by `requeue_stale`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from transcriber.jobs.models import TaskRow
from transcriber.jobs.status import TaskStatus

QUEUED, PROCESSING = TaskStatus.queued.value, TaskStatus.processing.value


def now() -> datetime:
    return datetime.now(UTC)


def rowcount(result: Any) -> int:
    return int(result.rowcount)


def oldest_queued(s: Session) -> str | None:
    """The next task to claim, locked (PostgreSQL) unless another claimer holds it."""
    return s.scalar(
        select(TaskRow.id)
        .where(TaskRow.status == QUEUED)
        .order_by(TaskRow.created_at, TaskRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def take(s: Session, task_id: str) -> bool:
    """Move the task from queued to processing under a new claim; False if it was not queued."""
    t = now()
    res = s.execute(
        update(TaskRow)
        .where(TaskRow.id == task_id, TaskRow.status == QUEUED)
        .values(
            status=PROCESSING,
            claim=str(uuid.uuid4()),
            attempts=TaskRow.attempts + 1,
            started_at=t,
            heartbeat_at=t,
            error=None,
        )
    )
    return rowcount(res) == 1


def _stale(older_than_s: float) -> tuple[ColumnElement[bool], ...]:
    last_seen = func.coalesce(TaskRow.heartbeat_at, TaskRow.started_at)
    return TaskRow.status == PROCESSING, last_seen < now() - timedelta(seconds=older_than_s)


def requeue_stale(s: Session, older_than_s: float) -> list[str]:
    """Queue again the processing tasks not heard from for `older_than_s` seconds.

    Each row is updated only if it is still processing under the claim that was
    read and still stale, so of two callers at once only one moves a given task,
    and a lease renewed in between is left alone.
    """
    found = s.execute(
        select(TaskRow.id, TaskRow.claim)
        .where(*_stale(older_than_s))
        .order_by(TaskRow.id)
        .with_for_update(skip_locked=True)
    ).all()
    moved: list[str] = []
    for task_id, claim in found:
        res = s.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.claim == claim, *_stale(older_than_s))
            .values(status=QUEUED, claim=None, stage=None)
        )
        if rowcount(res) == 1:
            moved.append(task_id)
    return moved
