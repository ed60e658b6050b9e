"""JobStore on SQLAlchemy: SQLite by default, PostgreSQL through the same code.

Every state change is a conditional UPDATE (`WHERE status = … AND claim = …`),
so a stale worker can never complete, fail or requeue a task it no longer owns.
Several processes may share one database: a claim is a lease that the holder
keeps alive (`heartbeat_at`), and `requeue_stale` takes back the ones let lapse.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from transcriber.errors import OptionError
from transcriber.jobs import leases, migrate, usage
from transcriber.jobs.database import make_engine, reachable
from transcriber.jobs.edit_log import EditLog
from transcriber.jobs.leases import PROCESSING as _PROCESSING
from transcriber.jobs.leases import QUEUED as _QUEUED
from transcriber.jobs.leases import now, rowcount
from transcriber.jobs.models import ApiKeyRow, CheckpointRow, EditRow, TaskRow, WebhookSecretRow
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.usage import Quota, Usage
from transcriber.signing import new_secret

KEY_NAME_MAX = 100
_FIELDS = [f.name for f in fields(TaskRecord)]
_TIMES = (
    "created_at", "started_at", "finished_at", "heartbeat_at", "webhook_due_at", "expected_end_at"
)  # fmt: skip


def utc(t: datetime) -> datetime:
    """SQLite hands datetimes back without a zone, PostgreSQL in the session's: both to UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _record(row: TaskRow) -> TaskRecord:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["status"] = TaskStatus(row.status)
    for key in _TIMES:
        if values[key] is not None:
            values[key] = utc(values[key])
    return TaskRecord(**values)


class SqlJobStore:
    """The job store on `url`: `sqlite:///…` or `postgresql+psycopg://…` (`postgresql://` too).

    Raises MissingExtraError when the driver is not installed and UnavailableError
    when the database cannot be reached; either message says what to do.
    """

    def __init__(self, url: str, max_attempts: int = 3) -> None:
        self.max_attempts = max_attempts
        """A task whose process dies under it this many times fails instead of running
        again (`recover`, `requeue_stale`)."""
        self.engine: Engine = make_engine(url)
        with reachable(self.engine):
            migrate.upgrade(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.edits = EditLog(self._session)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with reachable(self.engine), self._session() as s:
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
        request_key: str | None = None,
    ) -> TaskRecord:
        """A new queued task; `request_key` lets `find_request` find it (api/reuse.py)."""
        row = TaskRow(
            id=task_id or str(uuid.uuid4()),
            owner=owner,
            status=_QUEUED,
            progress=0.0,
            audio_done=0.0,
            filename=_text(filename),
            input_key=input_key,
            options=options,
            duration=duration,
            attempts=0,
            created_at=now(),
            request_key=request_key,
        )
        with self._session.begin() as s:
            s.add(row)
        return _record(row)

    def add_completed(
        self,
        task_id: str,
        owner: str,
        filename: str,
        input_key: str,
        result_key: str,
        options: dict[str, Any],
        duration: float,
        language: str | None,
        processing_time: float,
        started_at: datetime,
        warnings: list[dict[str, Any]] | None = None,
    ) -> TaskRecord:
        """Record a task whose work is already done, such as a live session: its input
        and result are stored, so it goes straight to completed, never through the queue."""
        row = TaskRow(
            id=task_id,
            owner=owner,
            status=TaskStatus.completed.value,
            progress=1.0,
            audio_done=duration,
            filename=_text(filename),
            input_key=input_key,
            result_key=result_key,
            options=options,
            duration=duration,
            language=language,
            attempts=1,
            processing_time=processing_time,
            created_at=started_at,
            started_at=started_at,
            finished_at=now(),
            warnings=list(warnings or ()),
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

    def find_request(self, owner: str, request_key: str) -> TaskRecord | None:
        """The owner's task made under `request_key` that can still answer it: a completed
        one (the newest), else one queued or running; None when every such task failed
        or was cancelled, or there is none."""
        live = (TaskStatus.completed.value, _QUEUED, _PROCESSING)
        q = select(TaskRow).where(
            TaskRow.owner == owner, TaskRow.request_key == request_key, TaskRow.status.in_(live)
        )
        with self._session() as s:
            found = [_record(r) for r in s.scalars(q.order_by(TaskRow.created_at.desc()))]
        done = [t for t in found if t.status == TaskStatus.completed and t.result_key]
        running = [t for t in found if t.status != TaskStatus.completed]
        return next(iter(done or running), None)

    def has_requests(self, owner: str) -> bool:
        """Whether the owner has any task that `find_request` could still answer from."""
        live = (TaskStatus.completed.value, _QUEUED, _PROCESSING)
        q = select(TaskRow.id).where(
            TaskRow.owner == owner, TaskRow.request_key.is_not(None), TaskRow.status.in_(live)
        )
        with self._session() as s:
            return s.scalars(q.limit(1)).first() is not None

    def list_tasks(
        self,
        owner: str | None,
        status: TaskStatus | None,
        limit: int,
        offset: int,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
    ) -> tuple[list[TaskRecord], int]:
        """A page of tasks, newest first, and how many match in all."""
        q = select(TaskRow)
        if owner is not None:
            q = q.where(TaskRow.owner == owner)
        if status is not None:
            q = q.where(TaskRow.status == status.value)
        if created_before is not None:
            q = q.where(TaskRow.created_at < created_before)
        if created_after is not None:
            q = q.where(TaskRow.created_at > created_after)
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
                    TaskRow.status == _QUEUED, TaskRow.created_at < task.created_at
                )
            )
            return int(ahead or 0) + 1

    def queued_ids(self, limit: int | None = None) -> list[str]:
        """Ids of queued tasks, oldest first."""
        q = select(TaskRow.id).where(TaskRow.status == _QUEUED)
        with self._session() as s:
            return list(s.scalars(q.order_by(TaskRow.created_at, TaskRow.id).limit(limit)))

    # --- claims (leases) -------------------------------------------------------
    def claim_next(self) -> TaskRecord | None:
        """Atomically move the oldest queued task to processing and return it.

        On SQLite a claimer that lost the race for a task tries the next one; each
        loss means another claimer won, so this ends.
        """
        while True:
            with self._session.begin() as s:
                candidate = leases.oldest_queued(s)
                if candidate is None:
                    return None
                if leases.take(s, candidate):
                    break
        return self.get(candidate)

    def claim(self, task_id: str) -> TaskRecord | None:
        """Claim this task if it is queued (a worker handed its id by a broker)."""
        with self._session.begin() as s:
            taken = leases.take(s, task_id)
        return self.get(task_id) if taken else None

    def heartbeat(self, task_id: str, claim: str) -> bool:
        """Renew the lease; False when the task is no longer held under `claim`."""
        return self._update_claimed(task_id, claim, {"heartbeat_at": now()})

    def requeue_stale(self, older_than_s: float) -> list[str]:
        """Give back to the queue the processing tasks whose holder has not been heard
        from (heartbeat, else start) for `older_than_s` seconds; their ids. Safe to
        call from several processes at once (leases.requeue_stale)."""
        with self._session.begin() as s:
            return leases.requeue_stale(s, older_than_s, self.max_attempts)

    def _update_claimed(
        self, task_id: str, held: str, values: dict[str, Any], finish: bool = False
    ) -> bool:
        """Update the task if it is held under `held`; with `finish`, its checkpoint goes."""
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.claim == held, TaskRow.status == _PROCESSING)
                .values(**values)
            )
            done = rowcount(res) == 1
            if done and finish:
                _drop_checkpoint(s, task_id)
            return done

    def progress(
        self,
        task_id: str,
        claim: str,
        stage: str,
        progress: float,
        audio_done: float,
        duration: float | None = None,
        expected_end_at: datetime | None = None,
    ) -> bool:
        """`expected_end_at`: when the worker now expects to finish (None: cannot tell)."""
        values: dict[str, Any] = {
            "stage": stage,
            "progress": progress,
            "audio_done": audio_done,
            "heartbeat_at": now(),
            "expected_end_at": expected_end_at,
        }
        if duration:
            values["duration"] = duration
        return self._update_claimed(task_id, claim, values)

    def append_checkpoint(self, task_id: str, claim: str, data: str) -> bool:
        """Add one step to the task's checkpoint (the work of its latest batch), if the task
        is still held under `claim`; the lease is renewed with it. What is already there
        is never read or written again, so checkpointing costs what the steps hold."""
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.claim == claim, TaskRow.status == _PROCESSING)
                .values(heartbeat_at=now())
            )
            if rowcount(res) != 1:
                return False
            s.add(CheckpointRow(task_id=task_id, data=data, created_at=now()))
            return True

    def checkpoint(self, task_id: str) -> list[str]:
        """The task's checkpoint steps, first to last (read when it resumes)."""
        q = select(CheckpointRow.data).where(CheckpointRow.task_id == task_id)
        with self._session() as s:
            return list(s.scalars(q.order_by(CheckpointRow.id)))

    def complete(
        self,
        task_id: str,
        claim: str,
        result_key: str,
        language: str | None,
        duration: float,
        processing_time: float,
        webhook: bool = False,
        warnings: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Finish the task; with `webhook`, a delivery is owed from this very moment.
        `warnings` are the transcript's notices, as its JSON document has them."""
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
                warnings=list(warnings or ()),
                expected_end_at=None,
                **leases.finished_values(webhook),
            ),
            finish=True,
        )

    def fail(
        self, task_id: str, claim: str, error: str, webhook: bool = False, code: str | None = None
    ) -> bool:
        """`code`: the error tree's code of the reason, for pages that word it themselves."""
        return self._update_claimed(
            task_id,
            claim,
            dict(status=TaskStatus.failed.value, error=_text(error), claim=None, stage=None,
                 error_code=code, expected_end_at=None, **leases.finished_values(webhook)),
            finish=True,
        )  # fmt: skip

    def requeue(self, task_id: str, claim: str) -> bool:
        """Give a running task back to the queue (the process is stopping), keeping its
        checkpoint; the attempt is given back too, so restarts never use up a task."""
        values = dict(status=_QUEUED, claim=None, stage=None, expected_end_at=None,
                      attempts=TaskRow.attempts - 1)  # fmt: skip
        return self._update_claimed(task_id, claim, values)

    def put_back(self, task_id: str, claim: str, error: str, code: str) -> str:
        """A task its worker could not finish through no fault of its own (storage or the
        database out of reach): back in the queue with its checkpoint, the attempt
        counted, or failed with `error` on its last attempt. `requeued`, `failed`, or
        `kept` when the claim is no longer held."""
        with self._session.begin() as s:
            found = s.execute(
                select(TaskRow.attempts, TaskRow.options).where(
                    TaskRow.id == task_id, TaskRow.claim == claim
                )
            ).first()
            if found is None:
                return "kept"
            attempts, options = found
            values: dict[str, Any] = dict(status=_QUEUED, claim=None, stage=None,
                                          expected_end_at=None)  # fmt: skip
            if attempts >= self.max_attempts:
                hook = isinstance(options, dict) and bool(options.get("webhook"))
                values = dict(status=TaskStatus.failed.value, claim=None, stage=None,
                              error=_text(error), error_code=code, expected_end_at=None,
                              **leases.finished_values(hook))  # fmt: skip
            held = (TaskRow.id == task_id, TaskRow.claim == claim)
            if rowcount(s.execute(update(TaskRow).where(*held).values(**values))) != 1:
                return "kept"
            if values["status"] == _QUEUED:
                return "requeued"
            _drop_checkpoint(s, task_id)
            return "failed"

    def recover(self) -> list[str]:
        """At start-up: tasks left `processing` by a dead process go back to the queue,
        or fail if that was their last attempt (`max_attempts`); the ids requeued.

        Only right when this process is the only worker (the embedded queue); with
        several, use `requeue_stale`. For the same reason, webhook deliveries held by a
        sender are those of the dead process: they are owed again at once, not when the
        lease lapses.
        """
        with self._session.begin() as s:
            t = now()
            s.execute(update(TaskRow).where(TaskRow.webhook_due_at > t).values(webhook_due_at=t))
            found = s.execute(
                select(
                    TaskRow.id, TaskRow.claim, TaskRow.attempts, TaskRow.filename, TaskRow.options
                ).where(TaskRow.status == _PROCESSING)
            ).all()
            ids = []
            for task_id, claim, attempts, filename, options in found:
                row = (task_id, attempts, filename, options)
                if leases.requeue_or_give_up(s, row, self.max_attempts, claim) == "requeued":
                    ids.append(task_id)
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
                row.stage, row.expected_end_at = None, None
                _drop_checkpoint(s, task_id)
            return before

    def retry(self, task_id: str, options: dict[str, Any] | None = None) -> bool:
        """Queue a failed or cancelled task again, with new `options` when given (then it
        no longer answers a repeat of the request that made it: api/reuse.py)."""
        changed = {} if options is None else {"options": options, "request_key": None}
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == task_id,
                    TaskRow.status.in_([TaskStatus.failed.value, TaskStatus.cancelled.value]),
                )
                .values(
                    status=_QUEUED,
                    error=None,
                    error_code=None,
                    expected_end_at=None,
                    progress=0.0,
                    stage=None,
                    finished_at=None,
                    created_at=now(),
                    webhook_due_at=None,  # the retried run's finish will owe its own
                    **changed,
                )
            )
            if rowcount(res) != 1:
                return False
            _drop_checkpoint(s, task_id)
            return True

    def rerun(self, task_id: str, options: dict[str, Any]) -> bool:
        """A completed task goes back to the queue with `options`, to be transcribed again
        from its stored input; False unless it was completed. Its result stays where it
        is until the new run replaces it (keep a copy first to keep the old version). The
        new run is new work: it starts with no attempt spent, owes its own webhook, has no
        edits (they were made to the old text), and answers no repeat of the request that
        made the task (its options may differ: api/reuse.py)."""
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == TaskStatus.completed.value)
                .values(
                    status=_QUEUED,
                    options=options,
                    error=None,
                    progress=0.0,
                    audio_done=0.0,
                    stage=None,
                    finished_at=None,
                    created_at=now(),
                    warnings=None,
                    attempts=0,
                    claim=None,
                    webhook_due_at=None,
                    request_key=None,
                )
            )
            if rowcount(res) != 1:
                return False
            _drop_checkpoint(s, task_id)
            s.execute(delete(EditRow).where(EditRow.task_id == task_id))
            return True

    # --- webhook deliveries -------------------------------------------------------
    def webhooks_due(self, limit: int = 100) -> list[str]:
        """Ids of tasks whose webhook is owed and not held by a live sender, oldest first."""
        q = select(TaskRow.id).where(TaskRow.webhook_due_at <= now())
        with self._session() as s:
            return list(s.scalars(q.order_by(TaskRow.webhook_due_at).limit(limit)))

    def claim_webhook(self, task_id: str, lease_s: float) -> bool:
        """Take the owed delivery of this task for `lease_s` seconds; False if none is owed
        or another sender holds it. A sender that dies lets the lease lapse, and the
        delivery is owed again."""
        t = now()
        with self._session.begin() as s:
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.webhook_due_at <= t)
                .values(webhook_due_at=t + timedelta(seconds=lease_s))
            )
            return rowcount(res) == 1

    def set_webhook_status(self, task_id: str, status: int) -> None:
        """Record what the task's webhook answered (0: it could not be reached); the
        delivery is no longer owed."""
        with self._session.begin() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(webhook_status=status, webhook_due_at=None)
            )

    def delete(self, task_id: str) -> None:
        with self._session.begin() as s:
            row = s.get(TaskRow, task_id)
            if row is not None:
                s.delete(row)
            s.execute(delete(EditRow).where(EditRow.task_id == task_id))
            _drop_checkpoint(s, task_id)

    def recent_runs(self, limit: int = 50) -> list[tuple[dict[str, Any], float, float]]:
        """The options, processing seconds and audio seconds of the latest completed tasks,
        newest first: how fast this installation transcribes (jobs/eta.py)."""
        q = (
            select(TaskRow.options, TaskRow.processing_time, TaskRow.duration)
            .where(
                TaskRow.status == TaskStatus.completed.value,
                TaskRow.processing_time.is_not(None),
                TaskRow.duration > 0,
            )
            .order_by(TaskRow.finished_at.desc())
            .limit(limit)
        )
        with self._session() as s:
            rows = s.execute(q).all()
        return [(dict(o or {}), float(p or 0.0), float(d or 0.0)) for o, p, d in rows]

    def webhook_secret(self, owner: str) -> str:
        """The secret that signs `owner`'s webhook deliveries, made the first time it is
        asked for (by whichever process asks first)."""
        with self._session() as s:
            found = s.get(WebhookSecretRow, owner)
            if found is not None:
                return found.secret
        try:
            with self._session.begin() as s:
                s.add(WebhookSecretRow(owner=owner, secret=new_secret(), created_at=now()))
        except IntegrityError:  # another process made it at the same moment
            pass
        with self._session() as s:
            made = s.get(WebhookSecretRow, owner)
            assert made is not None
            return made.secret

    # --- API keys --------------------------------------------------------------
    def add_key(self, key_id: str, name: str, key_hash: str, quota: Quota | None = None) -> None:
        if len(name) > KEY_NAME_MAX:  # the column's limit, which PostgreSQL enforces
            raise OptionError(f"an API key's name is at most {KEY_NAME_MAX} characters")
        q = quota or Quota()
        with self._session.begin() as s:
            row = ApiKeyRow(id=key_id, name=name, key_hash=key_hash, created_at=now())
            row.minutes_per_day, row.max_running = q.minutes_per_day, q.max_running
            s.add(row)

    def quota(self, owner: str) -> Quota:
        """What the key `owner` may use (no limits for keys from the settings)."""
        with self._session() as s:
            return usage.quota_of(s, owner)

    def usage(self, owner: str) -> Usage:
        """What `owner` has used: audio seconds submitted today (UTC), tasks active now."""
        with self._session() as s:
            return usage.usage_of(s, owner, usage.day_start())

    def usage_by_key(self) -> list[tuple[str, str, Usage]]:
        with self._session() as s:
            return usage.usage_by_key(s, usage.day_start())

    def find_key(self, key_hash: str) -> str | None:
        with self._session() as s:
            return s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.key_hash == key_hash))

    def has_keys(self) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(func.count()).select_from(ApiKeyRow)))

    def list_keys(self) -> list[tuple[str, str, datetime, Quota]]:
        with self._session() as s:
            rows = s.execute(select(ApiKeyRow.id, ApiKeyRow.name, ApiKeyRow.created_at,
                                    ApiKeyRow.minutes_per_day, ApiKeyRow.max_running))  # fmt: skip
            return [(r[0], r[1], utc(r[2]), Quota(r[3], r[4])) for r in rows]


def _drop_checkpoint(s: Session, task_id: str) -> None:
    s.execute(delete(CheckpointRow).where(CheckpointRow.task_id == task_id))


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, which a client can put in a file name."""
    return value.replace("\x00", "")
