"""JobStore on SQLAlchemy: SQLite by default, PostgreSQL through the same code.

Every state change is a conditional UPDATE (`WHERE status = … AND claim = …`),
so a stale worker can never complete, fail or requeue a task it no longer owns.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from transcriber.jobs import migrate
from transcriber.jobs.models import ApiKeyRow, TaskRow
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus

_FIELDS = [f.name for f in fields(TaskRecord)]


def now() -> datetime:
    return datetime.now(UTC)


def _record(row: TaskRow) -> TaskRecord:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["status"] = TaskStatus(row.status)
    for key in ("created_at", "started_at", "finished_at"):
        if values[key] is not None and values[key].tzinfo is None:  # SQLite drops the zone
            values[key] = values[key].replace(tzinfo=UTC)
    return TaskRecord(**values)


class SqlJobStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate.upgrade(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self._session() as s:
            s.execute(select(1))

    # --- tasks ---------------------------------------------------------------
    def create(
        self,
        owner: str,
        filename: str,
        input_key: str,
        options: dict[str, Any],
        duration: float | None,
        task_id: str | None = None,
    ) -> TaskRecord:
        row = TaskRow(
            id=task_id or str(uuid.uuid4()),
            owner=owner,
            status=TaskStatus.queued.value,
            progress=0.0,
            audio_done=0.0,
            filename=filename,
            input_key=input_key,
            options=options,
            duration=duration,
            attempts=0,
            created_at=now(),
        )
        with self._session.begin() as s:
            s.add(row)
        return _record(row)

    def get(self, task_id: str, owner: str | None = None) -> TaskRecord | None:
        with self._session() as s:
            row = s.get(TaskRow, task_id)
            if row is None or (owner is not None and row.owner != owner):
                return None
            return _record(row)

    def list_tasks(
        self, owner: str | None, status: TaskStatus | None, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        q = select(TaskRow)
        if owner is not None:
            q = q.where(TaskRow.owner == owner)
        if status is not None:
            q = q.where(TaskRow.status == status.value)
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(TaskRow.created_at.desc()).limit(limit).offset(offset))
            return [_record(r) for r in rows], total

    def counts(self) -> dict[str, int]:
        with self._session() as s:
            rows = s.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status))
            return {status: n for status, n in rows}

    def queue_position(self, task: TaskRecord) -> int | None:
        if task.status != TaskStatus.queued:
            return None
        with self._session() as s:
            ahead = s.scalar(
                select(func.count()).where(
                    TaskRow.status == TaskStatus.queued.value,
                    TaskRow.created_at < task.created_at,
                )
            )
            return int(ahead or 0) + 1

    def claim_next(self) -> TaskRecord | None:
        """Atomically move the oldest queued task to processing and return it."""
        with self._session() as s:
            for _ in range(5):
                candidate = s.scalar(
                    select(TaskRow.id)
                    .where(TaskRow.status == TaskStatus.queued.value)
                    .order_by(TaskRow.created_at)
                    .limit(1)
                )
                if candidate is None:
                    return None
                claim = str(uuid.uuid4())
                done = s.execute(
                    update(TaskRow)
                    .where(TaskRow.id == candidate, TaskRow.status == TaskStatus.queued.value)
                    .values(
                        status=TaskStatus.processing.value,
                        claim=claim,
                        attempts=TaskRow.attempts + 1,
                        started_at=now(),
                        error=None,
                    )
                )
                s.commit()
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    return self.get(candidate)
        return None

    def _update_claimed(self, task_id: str, held: str, values: dict[str, Any]) -> bool:
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == task_id,
                    TaskRow.claim == held,
                    TaskRow.status == TaskStatus.processing.value,
                )
                .values(**values)
            )
            return bool(res.rowcount == 1)  # type: ignore[attr-defined]

    def progress(
        self,
        task_id: str,
        claim: str,
        stage: str,
        progress: float,
        audio_done: float,
        duration: float | None = None,
    ) -> bool:
        values: dict[str, Any] = {"stage": stage, "progress": progress, "audio_done": audio_done}
        if duration:
            values["duration"] = duration
        return self._update_claimed(task_id, claim, values)

    def save_checkpoint(self, task_id: str, claim: str, data: dict[str, Any]) -> bool:
        return self._update_claimed(task_id, claim, {"checkpoint": data})

    def complete(
        self,
        task_id: str,
        claim: str,
        result_key: str,
        language: str | None,
        duration: float,
        processing_time: float,
    ) -> bool:
        return self._update_claimed(
            task_id,
            claim,
            dict(
                status=TaskStatus.completed.value,
                progress=1.0,
                stage=None,
                result_key=result_key,
                language=language,
                duration=duration,
                claim=None,
                processing_time=processing_time,
                finished_at=now(),
                checkpoint=None,
            ),
        )

    def fail(self, task_id: str, claim: str, error: str) -> bool:
        return self._update_claimed(
            task_id,
            claim,
            dict(
                status=TaskStatus.failed.value,
                error=error,
                claim=None,
                finished_at=now(),
                stage=None,
            ),
        )

    def requeue(self, task_id: str, claim: str) -> bool:
        """Give a running task back to the queue, keeping its checkpoint."""
        return self._update_claimed(
            task_id, claim, dict(status=TaskStatus.queued.value, claim=None, stage=None)
        )

    def recover(self) -> list[str]:
        """At start-up: tasks left `processing` by a dead process go back to the queue."""
        with self._session.begin() as s:
            ids = list(
                s.scalars(select(TaskRow.id).where(TaskRow.status == TaskStatus.processing.value))
            )
            if ids:
                s.execute(
                    update(TaskRow)
                    .where(TaskRow.id.in_(ids))
                    .values(status=TaskStatus.queued.value, claim=None, stage=None)
                )
            return ids

    def cancel(self, task_id: str) -> TaskStatus | None:
        """Mark a queued or running task cancelled; return the status it had."""
        with self._session.begin() as s:
            row = s.get(TaskRow, task_id, with_for_update=True)
            if row is None:
                return None
            before = TaskStatus(row.status)
            if before in (TaskStatus.queued, TaskStatus.processing):
                row.status, row.claim, row.finished_at = TaskStatus.cancelled.value, None, now()
                row.stage = None
            return before

    def retry(self, task_id: str) -> bool:
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == task_id,
                    TaskRow.status.in_([TaskStatus.failed.value, TaskStatus.cancelled.value]),
                )
                .values(
                    status=TaskStatus.queued.value,
                    error=None,
                    progress=0.0,
                    stage=None,
                    finished_at=None,
                    checkpoint=None,
                    created_at=now(),
                )
            )
            return bool(res.rowcount == 1)  # type: ignore[attr-defined]

    def delete(self, task_id: str) -> None:
        with self._session.begin() as s:
            row = s.get(TaskRow, task_id)
            if row is not None:
                s.delete(row)

    # --- API keys --------------------------------------------------------------
    def add_key(self, key_id: str, name: str, key_hash: str) -> None:
        with self._session.begin() as s:
            s.add(ApiKeyRow(id=key_id, name=name, key_hash=key_hash, created_at=now()))

    def find_key(self, key_hash: str) -> str | None:
        with self._session() as s:
            return s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.key_hash == key_hash))

    def has_keys(self) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(func.count()).select_from(ApiKeyRow)))

    def list_keys(self) -> list[tuple[str, str, datetime]]:
        with self._session() as s:
            rows = s.execute(select(ApiKeyRow.id, ApiKeyRow.name, ApiKeyRow.created_at))
            return [(r[0], r[1], r[2]) for r in rows]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
