"""Taking an upload into the queue, and waiting for its result: shared by every API dialect.

`/api/tasks` answers at once with the task; the drop-in endpoints (`/v1/audio/
transcriptions`, `/asr`) submit the same way and then wait for the task to finish,
so they get the same limits, persistence and recovery.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile

from transcriber.api.services import Services
from transcriber.api.transcripts import shown
from transcriber.api.uploads import staged_path
from transcriber.domain import Transcript, TranscriptionOptions
from transcriber.errors import (
    QueueFullError,
    QuotaExceededError,
    TranscriptionFailedError,
    UnavailableError,
    failed_task_error,
    naming,
)
from transcriber.jobs.codec import options_to_dict
from transcriber.jobs.events import FINAL_KINDS, TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.usage import seconds_to_next_day
from transcriber.jobs.view import public
from transcriber.media import probe
from transcriber.media.decode import MediaInfo
from transcriber.outbound import check_url, filename_of

log = logging.getLogger(__name__)

RECHECK_S = 5.0
RUNNING_RETRY_S = 30


def check_room(services: Services, owner: str) -> None:
    """Refuse a new task that the queue or the key's quota has no room for (429)."""
    s = services.settings
    if services.jobs.counts().get(TaskStatus.queued.value, 0) >= s.max_queue:
        raise QueueFullError(f"the queue is full ({s.max_queue} tasks); try again later")
    check_quota(services.jobs, owner, live_sessions=services.live.open_for(owner))


def check_quota(
    jobs: SqlJobStore, owner: str, adding_s: float = 0.0, live_sessions: int = 0
) -> float | None:
    """Refuse a task of `adding_s` seconds of audio that the key's quota does not allow
    (429, with Retry-After and what is left in the X-Quota-* headers); `live_sessions`,
    the key's live sessions open now, count as running tasks. Return the audio seconds
    the key has left today (None: no daily limit)."""
    quota = jobs.quota(owner)
    if not quota.limits:
        return None
    used = jobs.usage(owner)
    used = replace(used, running=used.running + live_sessions)
    headers: dict[str, str] = {}
    if quota.max_running is not None:
        headers["X-Quota-Max-Running"] = str(quota.max_running)
        headers["X-Quota-Running-Remaining"] = str(max(0, quota.max_running - used.running))
    left_s = None
    if quota.minutes_per_day is not None:
        left_s = max(0.0, quota.minutes_per_day * 60 - used.seconds_today)
        headers["X-Quota-Minutes-Per-Day"] = f"{quota.minutes_per_day:g}"
        headers["X-Quota-Minutes-Remaining"] = f"{left_s / 60:.2f}"
    if quota.max_running is not None and used.running >= quota.max_running:
        raise QuotaExceededError(
            f"this API key may have {quota.max_running} task(s) queued or running at once,"
            f" and has {used.running}; send the next when one has finished",
            headers | {"Retry-After": str(RUNNING_RETRY_S)},
        )
    if left_s is not None and (left_s <= 0 or adding_s > left_s):
        this = f"; this file is {adding_s / 60:.2f} min" if adding_s else ""
        raise QuotaExceededError(
            f"this API key may submit {quota.minutes_per_day:g} audio minutes a day (UTC)"
            f" and has {left_s / 60:.2f} left today{this}; more from 00:00 UTC",
            headers | {"Retry-After": str(seconds_to_next_day())},
        )
    return left_s


def safe_filename(name: str, limit: int = 200) -> str:
    """A client's file name fit to keep: no folders, at most `limit` characters, with its
    extension kept (the player tells the media type by it)."""
    name = name.replace("/", "_").replace("\\", "_").strip() or "upload"
    if len(name) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    if dot and 0 < len(suffix) <= 16:
        return f"{stem[: limit - len(suffix) - 1]}.{suffix}"
    return name[:limit]


async def submit(
    services: Services,
    owner: str,
    upload: UploadFile,
    options: TranscriptionOptions,
    extra: dict[str, Any],
    filename: str | None = None,
    request_key: str | None = None,
) -> TaskRecord:
    """Probe a staged multipart upload, move it into the store and queue it; on any
    refusal nothing is left behind. `filename` (default: the upload's) names the task;
    `request_key`: see SqlJobStore.find_request."""
    name = filename or upload.filename or "upload"
    return await submit_staged(
        services, owner, staged_path(upload), name, options, extra, request_key
    )


async def submit_staged(
    services: Services,
    owner: str,
    staged: Path,
    filename: str,
    options: TranscriptionOptions,
    extra: dict[str, Any],
    request_key: str | None = None,
) -> TaskRecord:
    """`submit` for a file in the store's staging folder (an upload, or raw PCM made a
    WAV file there): probed, moved into the store and queued."""
    s = services.settings
    filename = safe_filename(filename)
    task_id = str(uuid.uuid4())
    key = f"{task_id}/input"
    probed: list[MediaInfo] = []

    def check(path: Path) -> None:  # on the staged file, before it is stored
        with naming(path, filename):
            info = probe(path)
            info.check(options.clip, s.max_duration_s)
        adding_s = options.clip.length(info.duration) or 0.0
        check_quota(services.jobs, owner, adding_s, services.live.open_for(owner))
        probed.append(info)

    try:
        await services.store.put_file(key, staged, check=check)
    except BaseException:
        await asyncio.to_thread(services.store.delete_prefix, task_id)
        raise
    info = probed[0]
    stored = options_to_dict(options) | extra
    length = options.clip.length(info.duration)  # of what is to be transcribed
    try:
        task = await asyncio.to_thread(
            services.jobs.create,
            owner,
            filename,
            key,
            stored,
            length,
            task_id=task_id,
            request_key=request_key,
        )
    except BaseException:  # the database is down (503): no media kept without its task
        await asyncio.to_thread(services.store.delete_prefix, task_id)
        raise
    await asyncio.to_thread(services.queue.notify, task.id)  # Celery: a call to Redis
    return task


async def submit_url(
    services: Services,
    owner: str,
    url: str,
    options: TranscriptionOptions,
    extra: dict[str, Any],
) -> TaskRecord:
    """Queue media named by an http(s) URL. The URL is checked against the outbound
    policy now; the worker downloads it, so a large file does not hold the request,
    and a download that fails makes the task fail with the reason."""
    await asyncio.to_thread(check_url, url, services.settings.allow_private_urls)
    await asyncio.to_thread(check_room, services, owner)
    task_id = str(uuid.uuid4())
    stored = options_to_dict(options) | extra | {"source_url": url}
    filename = safe_filename(filename_of(url))
    task = await asyncio.to_thread(
        services.jobs.create, owner, filename, f"{task_id}/input", stored, None, task_id=task_id
    )
    await asyncio.to_thread(services.queue.notify, task.id)
    return task


def cancel(services: Services, task: TaskRecord, keep_input: bool = False) -> None:
    """Stop a task that is queued or running and drop its files (all but its media with
    `keep_input`, so that it can be retried)."""
    services.jobs.cancel(task.id)
    services.queue.cancel(task.id)
    if not keep_input:
        services.store.delete_prefix(task.id)
    after = services.jobs.get(task.id)
    if after is not None:
        services.events.publish(TaskEvent(task.id, task.owner, "cancelled", public(after)))


def require_worker(services: Services) -> None:
    """Waiting endpoints need a worker in this process, or they would wait for ever."""
    if not services.queue.runs_tasks:
        raise UnavailableError(
            "this process runs no workers (TRANSCRIBER_WORKERS=0), so it cannot answer"
            " synchronously; use POST /api/tasks and poll the task instead"
        )


async def watch(
    request: Request, services: Services, task: TaskRecord, cancel_on_hangup: bool = True
) -> AsyncIterator[TaskEvent]:
    """`task`'s events as they come (from the event bus, not by polling the store), until
    it completes; a failure is raised as its reason's own error (`failed_task_error`),
    a cancellation as TranscriptionFailedError.

    A client that hangs up stops the watch. Its task is cancelled, so no CPU goes to a
    result that nobody will read, unless `cancel_on_hangup` is False: then it runs on,
    for a repeat of the request to find (`/asr`, api/reuse.py). The store is read again
    at a final event, and every RECHECK_S in case an event was lost (a Redis relay
    that reconnected).
    """
    async with services.events.subscribe(task_id=task.id) as queue:
        left = asyncio.create_task(_client_left(request))
        try:
            now = await asyncio.to_thread(services.jobs.get, task.id)
            while not _ended(task, now):
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getter, left}, timeout=RECHECK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if left in done:
                    getter.cancel()
                    if cancel_on_hangup:
                        await asyncio.to_thread(cancel_if_running, services, task.id)
                    raise TranscriptionFailedError(f"{task.filename}: the client went away")
                if getter not in done:
                    getter.cancel()
                elif (event := getter.result()).kind not in FINAL_KINDS:
                    yield event
                    continue
                now = await asyncio.to_thread(services.jobs.get, task.id)
        finally:
            left.cancel()


def _ended(task: TaskRecord, now: TaskRecord | None) -> bool:
    """Whether `now` (the task as stored) is completed; raise if it failed or was cancelled."""
    if now is None or now.status == TaskStatus.cancelled:
        raise TranscriptionFailedError(f"{task.filename}: the task was cancelled")
    if now.status == TaskStatus.failed:
        reason = now.error or f"{task.filename}: transcription failed"
        raise failed_task_error(now.error_code, reason)
    return now.status == TaskStatus.completed and bool(now.result_key)


async def _client_left(request: Request) -> None:
    """Returns when the client disconnects (the request body is read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def cancel_if_running(services: Services, task_id: str) -> None:
    task = services.jobs.get(task_id)
    if task is not None and task.status in (TaskStatus.queued, TaskStatus.processing):
        cancel(services, task)


def cancel_in_background(services: Services, task_id: str) -> None:
    """`cancel_if_running` for a response already cancelled, which can await nothing
    more: in a thread of its own, since the database, storage and event bus calls must
    not hold the event loop."""

    def run() -> None:
        try:
            cancel_if_running(services, task_id)
        except Exception:  # the database or storage is down: the task runs to its end
            log.exception("task %s: not cancelled after its client left", task_id)

    threading.Thread(target=run, name=f"cancel-{task_id}", daemon=True).start()


def transcript_of(services: Services, task: TaskRecord) -> Transcript:
    """The transcript of a completed task, as people edited it (api/transcripts.py)."""
    if task.result_key is None:
        raise TranscriptionFailedError(f"{task.filename}: the task has no result")
    return shown(services, task)


async def finished(
    request: Request, services: Services, task: TaskRecord, cancel_on_hangup: bool = True
) -> Transcript:
    """Wait for `task`; its transcript, or the reason it failed as an error (`watch`)."""
    async for _ in watch(request, services, task, cancel_on_hangup):
        pass
    return await asyncio.to_thread(completed_transcript, services, task.id)


def completed_transcript(services: Services, task_id: str) -> Transcript:
    """The transcript of a task that has completed."""
    task = services.jobs.get(task_id)
    if task is None:
        raise TranscriptionFailedError(f"task {task_id} was deleted")
    return transcript_of(services, task)
