"""`/detect-language`'s fast lane: detection outside the task queue, on a copy of the
model of its own.

A detection reads the first window of speech (at most 30 s of it) and asks the model
once. It never waits behind queued tasks, and it does not run on the engine that
transcribes, whose replicas long transcriptions keep busy batch after batch: it runs
in a thread on the engines' detector (`EngineManager.use(detector=True)`), so it
answers in a second or two even while the workers are busy.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from pathlib import Path
from typing import Any

from transcriber.api.services import Services
from transcriber.errors import naming
from transcriber.languages import language_name
from transcriber.media.raw_pcm import BYTES_PER_SECOND

# Detection reads until the first speech, but no further than this: a long silent file
# (or one whose header hides its length) must not hold the endpoint.
DETECT_SCAN_S = 600.0
# Of raw PCM, only what detection can read is kept.
RAW_KEEP_BYTES = int(DETECT_SCAN_S * BYTES_PER_SECOND)
# whisper-asr-webservice names a language in English; `und` is ISO 639's "undetermined",
# which Bazarr's language library reads as such.
UNDETERMINED = ("und", "undetermined")

# One detection at a time: the detector is one copy of the model, and a burst of
# detections must not take the CPU from the running transcriptions.
_one_at_a_time = threading.Lock()
# Requests wait their turn on the event loop, not in threads: a burst of detections
# parked on the lock would hold the threads every other route's work runs in.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _turn() -> asyncio.Lock:
    """This event loop's queue of detections."""
    loop = asyncio.get_running_loop()
    if (lock := _turns.get(loop)) is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock


async def detect_language(services: Services, path: Path, name: str) -> dict[str, Any]:
    """whisper-asr-webservice's answer for the media at `path` (`name` to the client):
    the language of its first window of speech, or `und` with the reason when there is
    no speech within DETECT_SCAN_S."""

    def detect() -> tuple[str, float] | None:
        with _one_at_a_time, naming(path, name):
            return services.pipeline.detect_language(path, max_duration_s=DETECT_SCAN_S)

    async with _turn():
        found = await asyncio.to_thread(detect)
    if found is None:
        code, language = UNDETERMINED
        return {
            "detected_language": language,
            "language_code": code,
            "confidence": 0.0,
            "reason": f"{name}: no speech was found in its first {DETECT_SCAN_S / 60:.0f}"
            " minutes (or in all of it, if shorter), so there is no language to detect",
        }
    code, confidence = found
    return {
        "detected_language": language_name(code),
        "language_code": code,
        "confidence": round(confidence, 4),
    }
