"""OpenAI's transcription shapes beyond plain text: `diarized_json`, and `stream=true`.

A streamed transcription is a server-sent event stream: `transcript.text.delta`
events as text is transcribed, then one `transcript.text.done` with the whole text;
for `diarized_json`, a `transcript.text.segment` event per segment (with its speaker)
comes before the `done`, and with `include[]=logprobs` the `done` carries each word's
log-probability. This service finishes a batch of speech windows at a time,
so deltas come every few tens of seconds of audio, from the worker's `text` events. A
failure after the stream has begun is an `{"error": {...}}` event in OpenAI's shape
(api/errors.py), which OpenAI's SDK raises as an APIError.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from transcriber.api.errors import openai_error
from transcriber.api.services import Services
from transcriber.api.submit import cancel_in_background, completed_transcript, watch
from transcriber.domain import Transcript
from transcriber.errors import TranscriberError
from transcriber.jobs.record import TaskRecord

STREAM_FORMATS = ("json", "text", "diarized_json")
MIN_PROBABILITY = 1e-10  # a word's probability of 0 (rounded) has a finite logprob


def diarized_json(t: Transcript) -> dict[str, Any]:
    """OpenAI's `diarized_json`; speakers are this service's letters ("A", "B", …)."""
    return {
        "task": "transcribe",
        "duration": t.duration,
        "text": t.text,
        "segments": [_segment(i, s.start, s.end, s.speaker, s.text) for i, s in
                     enumerate(x for x in t.segments if x.text.strip())],
        "usage": {"type": "duration", "seconds": t.duration},
    }  # fmt: skip


def _segment(i: int, start: float, end: float, speaker: str | None, text: str) -> dict[str, Any]:
    return {"type": "transcript.text.segment", "id": f"seg_{i:03d}", "start": start,
            "end": end, "speaker": speaker or "A", "text": text.strip()}  # fmt: skip


def event(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def word_logprobs(t: Transcript) -> list[dict[str, Any]]:
    """OpenAI's `logprobs` (`include[]=logprobs`): here one entry per word, its natural
    log-probability (the product of its tokens' probabilities, as Whisper gives it)."""
    return [
        {
            "token": w.word,
            "logprob": round(math.log(max(w.probability, MIN_PROBABILITY)), 6),
            "bytes": list(w.word.encode()),
        }
        for s in t.segments
        for w in s.words
    ]


async def transcript_events(
    request: Request, services: Services, task: TaskRecord, fmt: str, logprobs: bool = False
) -> AsyncIterator[bytes]:
    """The stream for `task`, from the text of each batch as the worker finishes it."""
    streamed = ""
    try:
        async for update in watch(request, services, task):
            for text in update.data.get("texts", ()) if update.kind == "text" else ():
                delta = f" {text}" if streamed else text
                yield event({"type": "transcript.text.delta", "delta": delta})
                streamed += delta
        transcript = await asyncio.to_thread(completed_transcript, services, task.id)
    except TranscriberError as e:
        yield event({"error": openai_error(e.http_status, e.code, e.message, e.param)})
        return
    except BaseException:  # the client hung up and the response was cancelled
        cancel_in_background(services, task.id)
        raise
    text = transcript.text
    if text.startswith(streamed) and len(text) > len(streamed):
        yield event({"type": "transcript.text.delta", "delta": text[len(streamed) :]})
    if fmt == "diarized_json":
        for segment in diarized_json(transcript)["segments"]:
            yield event(segment)
    done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
    if logprobs:
        done["logprobs"] = word_logprobs(transcript)
    yield event(done)
