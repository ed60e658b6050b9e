"""Claims as leases, for workers in several processes sharing one database.

Taking a task is a conditional UPDATE from `queued`; on PostgreSQL the candidate
row is also locked with SKIP LOCKED, so concurrent claimers pass each other by
instead of queueing on the same row. The holder renews `heartbeat_at`; a task
whose holder has gone quiet is taken back by `requeue_stale`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from transcriber.jobs.models import CheckpointRow, TaskRow
from transcriber.jobs.status import TaskStatus

QUEUED, PROCESSING = TaskStatus.queued.value, TaskStatus.processing.value
log = logging.getLogger(__name__)


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


def finished_values(webhook: bool) -> dict[str, Any]:
    """The columns every finish sets: when, and whether a webhook delivery is now owed."""
    t = now()
    if not webhook:
        return {"finished_at": t}
    return {"finished_at": t, "webhook_due_at": t, "webhook_status": None}


def gave_up(filename: str, attempts: int) -> dict[str, Any]:
    """A task whose process died under it on its last allowed attempt fails, saying so."""
    return {
        "status": TaskStatus.failed.value,
        "claim": None,
        "stage": None,
        "error": (
            f"{filename}: gave up after {attempts} attempts: the service stopped while"
            " transcribing it each time, so it is not tried again (a file that crashes"
            " the service would otherwise crash it for ever); retry it to try once more"
        ),
    }


def requeue_or_give_up(s: Session, row: Any, max_attempts: int, claim: str | None) -> str:
    """Put a processing task whose holder died back in the queue, or fail it on its last
    attempt; `requeued` or `failed`. The row (id, attempts, filename, options) is updated
    only while it still has `claim`."""
    task_id, attempts, filename, options = row
    values: dict[str, Any] = dict(status=QUEUED, claim=None, stage=None, expected_end_at=None)
    if attempts >= max_attempts:
        hook = isinstance(options, dict) and bool(options.get("webhook"))
        values = gave_up(filename, attempts) | finished_values(hook) | {"expected_end_at": None}
    res = s.execute(
        update(TaskRow)
        .where(TaskRow.id == task_id, TaskRow.status == PROCESSING, TaskRow.claim == claim)
        .values(**values)
    )
    if rowcount(res) != 1:
        return "kept"
    if values["status"] == QUEUED:
        return "requeued"
    s.execute(delete(CheckpointRow).where(CheckpointRow.task_id == task_id))
    log.warning("task %s failed after %d attempts (its process died each time)", task_id, attempts)
    return "failed"


def _stale(older_than_s: float) -> tuple[ColumnElement[bool], ...]:
    last_seen = func.coalesce(TaskRow.heartbeat_at, TaskRow.started_at)
    return TaskRow.status == PROCESSING, last_seen < now() - timedelta(seconds=older_than_s)


def requeue_stale(s: Session, older_than_s: float, max_attempts: int) -> list[str]:
    """Queue again the processing tasks not heard from for `older_than_s` seconds (those
    on their last attempt fail instead); the ids requeued.

    Each row is updated only if it is still processing under the claim that was
    read, so of two callers at once only one moves a given task, and a lease
    renewed in between (a new claim) is left alone.
    """
    found = s.execute(
        select(TaskRow.id, TaskRow.claim, TaskRow.attempts, TaskRow.filename, TaskRow.options)
        .where(*_stale(older_than_s))
        .order_by(TaskRow.id)
        .with_for_update(skip_locked=True)
    ).all()
    moved: list[str] = []
    for task_id, claim, attempts, filename, options in found:
        row = (task_id, attempts, filename, options)
        if requeue_or_give_up(s, row, max_attempts, claim) == "requeued":
            moved.append(task_id)
    return moved
