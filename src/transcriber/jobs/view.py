"""The public view of a task, shared by REST responses and WebSocket events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus


def eta_seconds(task: TaskRecord) -> float | None:
    """Seconds left: to the end the worker expects (jobs/eta.py), which counts down by
    itself between reports; from the pace so far when no end is known."""
    if task.status != TaskStatus.processing:
        return None
    if task.expected_end_at is not None:
        return round(max(0.0, (task.expected_end_at - datetime.now(UTC)).total_seconds()), 1)
    if task.started_at is None or task.progress < 0.02:
        return None
    elapsed = (datetime.now(UTC) - task.started_at).total_seconds()
    return round(max(0.0, elapsed / task.progress * (1 - task.progress)), 1)


def public(task: TaskRecord, queue_position: int | None = None) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "id": task.id,
        "status": task.status.value,
        "stage": task.stage,
        "progress": round(task.progress, 4),
        "queue_position": queue_position,
        "eta_seconds": eta_seconds(task),
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "error": task.error,
        "error_code": task.error_code,
        "filename": task.filename,
        "duration": task.duration,
        "language": task.language,
        "options": redacted(task.options),
        "attempts": task.attempts,
        "processing_time": task.processing_time,
        "webhook_status": task.webhook_status,
        "warnings": task.warnings or [],
    }


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    """Task options fit to show: a webhook's secret header value is hidden."""
    raw = options.get("webhook")
    if isinstance(raw, dict) and raw.get("header_value") is not None:
        return {**options, "webhook": {**raw, "header_value": "***"}}
    return options
