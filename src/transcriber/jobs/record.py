"""A task as the rest of the code sees it: a typed, immutable value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transcriber.jobs.status import TaskStatus


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: str
    owner: str
    status: TaskStatus
    stage: str | None
    progress: float
    audio_done: float
    filename: str
    input_key: str
    options: dict[str, Any]
    duration: float | None
    language: str | None
    error: str | None
    attempts: int
    claim: str | None
    result_key: str | None
    processing_time: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = None
    """Last sign of life from the worker holding the task (claim, progress, heartbeat)."""
    webhook_status: int | None = None
    """What the client's webhook answered the last delivery: an HTTP status, 0 when it
    could not be reached, None before any delivery."""
    webhook_due_at: datetime | None = None
    """When a webhook delivery is owed (None: nothing owed). Set when the task finishes,
    pushed forward while a sender holds it, cleared when the answer is recorded."""
    warnings: list[dict[str, Any]] | None = None
    """The completed transcript's notices, as its JSON's `metadata.warnings` has them."""
    request_key: str | None = None
    """For a task made by a waiting request that may be repeated (`/asr`): the hash of
    its upload and options, under which a repeat finds this task (api/reuse.py)."""
    error_code: str | None = None
    """The error tree's code of a failed task's reason (`not_media`, `fetch_failed`, …)."""
    expected_end_at: datetime | None = None
    """When the worker expects a running task to finish; None when it cannot tell yet."""
