"""What each API key may use (its quota) and has used: audio seconds submitted today
(UTC), and tasks queued or running now. Tasks that failed or were cancelled do not
count against the day's minutes; a task's length is its duration once known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from transcriber.jobs.models import ApiKeyRow, TaskRow
from transcriber.jobs.status import TaskStatus

ACTIVE = (TaskStatus.queued.value, TaskStatus.processing.value)
COUNTED = (*ACTIVE, TaskStatus.completed.value)


@dataclass(frozen=True, slots=True)
class Quota:
    minutes_per_day: float | None = None
    max_running: int | None = None

    @property
    def limits(self) -> bool:
        return self.minutes_per_day is not None or self.max_running is not None


@dataclass(frozen=True, slots=True)
class Usage:
    seconds_today: float
    running: int


def day_start(now: datetime | None = None) -> datetime:
    t = now or datetime.now(UTC)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_day(now: datetime | None = None) -> int:
    t = now or datetime.now(UTC)
    return max(1, int((day_start(t) + timedelta(days=1) - t).total_seconds()) + 1)


def quota_of(s: Session, owner: str) -> Quota:
    row = s.get(ApiKeyRow, owner)
    if row is None:  # a key from TRANSCRIBER_API_KEYS, or no keys at all
        return Quota()
    return Quota(row.minutes_per_day, row.max_running)


def _usage_columns(since: datetime) -> tuple[Any, Any]:
    today = (TaskRow.created_at >= since) & TaskRow.status.in_(COUNTED)
    seconds = func.coalesce(func.sum(case((today, func.coalesce(TaskRow.duration, 0.0)),
                                          else_=0.0)), 0.0)  # fmt: skip
    running = func.coalesce(func.sum(case((TaskRow.status.in_(ACTIVE), 1), else_=0)), 0)
    return seconds, running


def usage_of(s: Session, owner: str, since: datetime) -> Usage:
    seconds, running = _usage_columns(since)
    row = s.execute(select(seconds, running).where(TaskRow.owner == owner)).one()
    return Usage(float(row[0]), int(row[1]))


def usage_by_key(s: Session, since: datetime) -> list[tuple[str, str, Usage]]:
    """(key id, key name, usage) of every stored key; never the key itself."""
    seconds, running = _usage_columns(since)
    used = (
        select(TaskRow.owner.label("owner"), seconds.label("seconds"), running.label("running"))
        .group_by(TaskRow.owner)
        .subquery()
    )
    rows = s.execute(
        select(ApiKeyRow.id, ApiKeyRow.name, used.c.seconds, used.c.running)
        .outerjoin(used, used.c.owner == ApiKeyRow.id)
        .order_by(ApiKeyRow.id)
    )
    return [(r[0], r[1], Usage(float(r[2] or 0.0), int(r[3] or 0))) for r in rows]
