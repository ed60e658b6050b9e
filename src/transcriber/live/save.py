"""A finished live session becomes an ordinary completed task: its recording as the
input, its transcript as the result. From then on it is listed, played, exported and
renamed like any uploaded file's task, and can be transcribed again offline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from transcriber.domain import Transcript
from transcriber.formats import render
from transcriber.formats.json_doc import notice_doc
from transcriber.jobs.events import EventBus, TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.view import public
from transcriber.jobs.worker import result_key
from transcriber.live.session import LiveSession
from transcriber.storage import Store
from transcriber.storage.base import CHUNK


def session_filename(session: LiveSession) -> str:
    """`live-2026-12-07-1504.wav`: when the session began (UTC)."""
    return f"live-{session.started_at:%Y-%m-%d-%H%M%S}.wav"


async def save_session(
    session: LiveSession,
    transcript: Transcript,
    owner: str,
    jobs: SqlJobStore,
    store: Store,
    events: EventBus,
    limit_bytes: int,
) -> TaskRecord | None:
    """Store the session's audio and `transcript` as a completed task; None when no
    audio came at all. Call after `session.finish()`."""
    if session.recording.samples == 0:
        return None
    task_id = session.task_id
    input_key = f"{task_id}/input"
    try:
        await store.put_stream(input_key, _chunks(session.recording.path), limit_bytes)
        body = await asyncio.to_thread(render, transcript, "json")  # hours of words: ~1 s
        await asyncio.to_thread(store.put_bytes, result_key(task_id), body)
        task = await asyncio.to_thread(
            jobs.add_completed,
            task_id,
            owner,
            session_filename(session),
            input_key,
            result_key(task_id),
            session.options(),
            transcript.duration,
            transcript.language,
            transcript.processing_time,
            session.started_at,
            [notice_doc(n) for n in transcript.notices],
        )
    except BaseException:
        await asyncio.to_thread(store.delete_prefix, task_id)
        raise
    # Redis, with the Celery queue: a network call, off the event loop.
    await asyncio.to_thread(
        events.publish, TaskEvent(task.id, task.owner, "completed", public(task))
    )
    return task


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while block := await asyncio.to_thread(f.read, CHUNK):
            yield block
