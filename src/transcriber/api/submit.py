"""Taking an upload into the queue, and waiting for its result: shared by every API dialect.

`/api/tasks` answers at once with the task; the drop-in endpoints (`/v1/audio/
transcriptions`, `/asr`) submit the same way and then wait for the task to finish,
so they get the same limits, persistence and recovery.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile

from transcriber.api.services import Services
from transcriber.api.transcripts import shown
from transcriber.domain import Transcript, TranscriptionOptions
from transcriber.errors import (
    QueueFullError,
    TranscriptionFailedError,
    UnavailableError,
    UploadTooLargeError,
    naming,
)
from transcriber.jobs.codec import options_to_dict
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.view import public
from transcriber.media import probe
from transcriber.media.decode import MediaInfo
from transcriber.outbound import check_url, filename_of

POLL_S = 0.25


async def chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    while block := await upload.read(1 << 20):
        yield block


def check_room(request: Request, services: Services) -> int:
    """Refuse early what the limits refuse anyway; the upload limit in bytes."""
    s = services.settings
    limit = int(s.max_upload_mb * 1e6)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise UploadTooLargeError(f"upload is larger than the limit of {s.max_upload_mb:.0f} MB")
    if services.jobs.counts().get(TaskStatus.queued.value, 0) >= s.max_queue:
        raise QueueFullError(f"the queue is full ({s.max_queue} tasks); try again later")
    return limit


async def submit(
    request: Request,
    services: Services,
    owner: str,
    upload: UploadFile,
    options: TranscriptionOptions,
    extra: dict[str, Any],
) -> TaskRecord:
    """Store and probe a multipart upload, then queue it."""
    name = upload.filename or "upload"
    return await submit_stream(request, services, owner, name, chunks_of(upload), options, extra)


async def submit_stream(
    request: Request,
    services: Services,
    owner: str,
    filename: str,
    chunks: AsyncIterator[bytes],
    options: TranscriptionOptions,
    extra: dict[str, Any],
) -> TaskRecord:
    """Store and probe the media in `chunks`, then queue it; on any refusal nothing is
    left behind."""
    s = services.settings
    limit = check_room(request, services)
    task_id = str(uuid.uuid4())
    key = f"{task_id}/input"
    probed: list[MediaInfo] = []

    def check(path: Path) -> None:  # on the spooled copy, before it is stored
        with naming(path, filename):
            info = probe(path)
            info.check(options.clip, s.max_duration_s)
        probed.append(info)

    try:
        await services.store.put_stream(key, chunks, limit, check=check)
    except BaseException:
        services.store.delete_prefix(task_id)
        raise
    info = probed[0]
    filename = filename.replace("/", "_").replace("\\", "_")[:200]
    stored = options_to_dict(options) | extra
    length = options.clip.length(info.duration)  # of what is to be transcribed
    task = services.jobs.create(owner, filename, key, stored, length, task_id=task_id)
    services.queue.notify(task.id)
    return task


async def submit_url(
    request: Request,
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
    check_room(request, services)
    task_id = str(uuid.uuid4())
    stored = options_to_dict(options) | extra | {"source_url": url}
    filename = filename_of(url).replace("/", "_").replace("\\", "_")
    task = services.jobs.create(owner, filename, f"{task_id}/input", stored, None, task_id=task_id)
    services.queue.notify(task.id)
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


async def states(
    request: Request, services: Services, task: TaskRecord
) -> AsyncIterator[TaskRecord]:
    """`task` as it moves on, polled, ending with it completed; its failure as an error.

    A client that hangs up stops the watch: its task is cancelled, so no CPU goes to
    a result that nobody will read.
    """
    while True:
        now = services.jobs.get(task.id)
        if now is None or now.status == TaskStatus.cancelled:
            raise TranscriptionFailedError(f"{task.filename}: the task was cancelled")
        if now.status == TaskStatus.failed:
            raise TranscriptionFailedError(now.error or f"{task.filename}: transcription failed")
        yield now
        if now.status == TaskStatus.completed and now.result_key:
            return
        if await request.is_disconnected():
            cancel(services, now)
            raise TranscriptionFailedError(f"{task.filename}: the client went away")
        await asyncio.sleep(POLL_S)


def transcript_of(services: Services, task: TaskRecord) -> Transcript:
    """The transcript of a completed task, as people edited it (api/transcripts.py)."""
    if task.result_key is None:
        raise TranscriptionFailedError(f"{task.filename}: the task has no result")
    return shown(services, task)


async def finished(request: Request, services: Services, task: TaskRecord) -> Transcript:
    """Wait for `task`; its transcript, or the reason it failed as an error (`states`)."""
    async for now in states(request, services, task):
        task = now
    return transcript_of(services, task)
