"""A repeated `/asr` request answered by the task the first one made.

whisper-asr-webservice's clients wait for the transcript on the open request, up to a
timeout of their own (Bazarr's default is an hour), and when it fires they give up and
try again later. So a client that hangs up does not cancel an `/asr` task: it runs on,
and the same request made again (the same bytes, the same options) finds it. Finished,
its stored transcript answers at once; still running, the repeat waits for it. Either
way nothing is transcribed twice. A task that failed or was cancelled is not reused:
the repeat makes a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from transcriber.api.received import Received
from transcriber.api.services import Services
from transcriber.domain import TranscriptionOptions
from transcriber.jobs.codec import options_to_dict
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus


def request_key(received: Received, options: TranscriptionOptions) -> str:
    """The hash that identifies a request: its upload's content and how it was read
    (raw PCM or a media file), and every option that shapes the transcript (model, beam,
    task, language, prompt, VAD, words, speakers). The output format is not in it: each
    is rendered from the one stored transcript."""
    asked = {
        "upload_sha256": received.sha256,
        "raw_pcm": received.raw,
        "options": options_to_dict(options),
    }
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reusable(services: Services, owner: str, key: str) -> TaskRecord | None:
    task = services.jobs.find_request(owner, key)
    if task is None:
        return None
    if task.status == TaskStatus.completed and not (
        task.result_key and services.store.exists(task.result_key)
    ):
        return None  # its result is gone from storage: transcribe again
    return task


async def reusable(services: Services, owner: str, key: str) -> TaskRecord | None:
    """The owner's task that answers the request `key`, finished or on its way; None
    when there is none to reuse."""
    return await asyncio.to_thread(_reusable, services, owner, key)
