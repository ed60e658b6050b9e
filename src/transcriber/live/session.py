"""One live session, whatever the protocol: bytes in, events out, a saved task at the end.

`push` takes the client's frames in order; each one is decoded, written to the
recording and run through the VAD on a worker thread, then handed to the stream on
the event loop. `finish` ends the stream (the open utterance becomes its last final)
and `transcript` gives the whole result. The protocols (`/ws/live`, `/v1/realtime`)
only translate messages and events.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from transcriber.domain import SpeakerStat, Transcript
from transcriber.engines.base import Engine
from transcriber.errors import QuotaExceededError, UploadTooLargeError
from transcriber.jobs.usage import seconds_to_next_day
from transcriber.live.audio import AudioFormat, AudioInput
from transcriber.live.recording import Recording
from transcriber.live.speakers import OnlineSpeakers
from transcriber.live.stream import LiveConfig, LiveStream
from transcriber.media.vad import Region, VadParams
from transcriber.pipeline import verdicts

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """What a client asked for when it opened the session."""

    format: AudioFormat
    language: str | None  # None: detect
    prompt: str | None
    diarize: bool
    model: str
    beam_size: int
    protocol: str  # "ws" (the native protocol) or "realtime" (OpenAI's)


@dataclass(frozen=True, slots=True)
class LiveTuning:
    """The service's settings for live sessions."""

    vad: VadParams
    step_s: float
    max_buffer_s: float
    max_duration_s: float
    diarization_method: str = "pyannote"  # for the saved task's speakers
    model_dir: Path | None = None  # where the diarization keeps what it builds
    quota_s: float | None = None  # the audio the key's daily quota leaves this session
    diarization_step_s: float = 0.0  # the saved task's speaker pass: its chunk step


class LiveSession:
    def __init__(
        self,
        request: LiveRequest,
        tuning: LiveTuning,
        engine_for: Callable[[], Engine],
        executor: Executor,
    ) -> None:
        self.request = request
        self.tuning = tuning
        self.task_id = str(uuid.uuid4())  # the saved task's id, known from the start
        self.started_at = datetime.now(UTC)
        self._started = time.perf_counter()
        self._executor = executor
        self._input = AudioInput(request.format)
        self.recording = Recording(request.format.sample_rate)
        self.speakers = OnlineSpeakers() if request.diarize else None
        config = LiveConfig(
            language=request.language,
            beam_size=request.beam_size,
            prompt=request.prompt,
            vad=tuning.vad,
            step_s=tuning.step_s,
            max_buffer_s=tuning.max_buffer_s,
            diarize=request.diarize,
        )
        self._engine_for = engine_for
        try:
            self.stream = LiveStream(engine_for, config, executor, self.speakers)
        except BaseException:  # the VAD model missing or damaged: no recording left behind
            self.recording.remove()
            raise
        self.finished = False

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return self.recording.seconds

    async def push(self, data: bytes) -> None:
        """One frame of the client's audio (raises AudioFrameError when it is not audio;
        QuotaExceededError or UploadTooLargeError at the audio the key's quota or the
        duration limit allows, after taking the audio up to that point)."""
        if not data:
            return
        audio, regions, cut = await self._run(self._prepare, data)
        if len(audio):
            await self.stream.advance(audio, regions)
        if not cut:
            return
        quota_s = self.tuning.quota_s
        if quota_s is not None and quota_s < self.tuning.max_duration_s:
            raise QuotaExceededError(
                f"this API key's audio minutes for today ran out after {self.seconds:.0f} s"
                " of this session; what was heard is saved, and more comes at 00:00 UTC",
                {"Retry-After": str(seconds_to_next_day())},
            )
        raise UploadTooLargeError(
            f"the live session reached the limit of {self.tuning.max_duration_s:.0f} s"
            " of audio; start a new one"
        )

    def _prepare(self, data: bytes) -> tuple[np.ndarray, list[Region], bool]:
        """The frame at the model's rate, its speech regions, and whether it was cut at
        the session's limit (the audio past it is not taken)."""
        pcm = self._input.pcm16(data)
        limit_s = self.tuning.max_duration_s
        if self.tuning.quota_s is not None:
            limit_s = min(limit_s, self.tuning.quota_s)
        room = max(0, round(limit_s * self.recording.sample_rate) - self.recording.samples)
        cut = len(pcm) > room
        if cut:
            pcm = pcm[:room]
        if not len(pcm):
            return np.zeros(0, np.float32), [], cut
        self.recording.write(pcm)
        audio = self._input.to_model_rate(pcm)
        return audio, self.stream.detect(audio), cut

    async def commit(self) -> None:
        """End the open utterance now (OpenAI's `input_audio_buffer.commit`)."""
        closed = await self._run(self.stream.detect_end)
        await self.stream.end_utterance(closed)

    async def mark(self, token: str) -> None:
        """A `Marker(token)` event will follow the finals of all the audio so far."""
        await self.stream.mark(token)

    async def finish(self) -> None:
        """End of the stream: the open utterance is closed and every final decoded."""
        if self.finished:
            return
        self.finished = True

        def last() -> tuple[np.ndarray, list[Region]]:
            tail = self._input.flush()
            return tail, self.stream.detect(tail) + self.stream.detect_end()

        audio, regions = await self._run(last)
        await self.stream.advance(audio, regions)
        await self.stream.drain()
        self.recording.close()

    def transcript(self) -> Transcript:
        """The session's result. With `diarize`, its speakers are found once more as a
        file's are, from the whole recording: the labels the finals carried were guesses
        from the speech so far. Call after `finish` (blocking: on a worker thread)."""
        stream = self.stream
        segments = list(stream.segments)
        speakers: tuple[SpeakerStat, ...] = ()
        if self.speakers is not None and segments:
            from transcriber.diarization import assign_speakers, diarize

            turns = diarize(
                self.recording.path,
                stream.regions,
                cache_dir=self.tuning.model_dir,
                duration=self.seconds,
                method=self.tuning.diarization_method,
                step_s=self.tuning.diarization_step_s,
            )
            labelled, summary = assign_speakers(segments, turns)
            segments = list(labelled)
            speakers = tuple(SpeakerStat(s.label, s.seconds, s.turns) for s in summary)
        detected = None if self.request.language else stream.language_probability
        notices = verdicts(segments, stream.language, detected, self.seconds, bool(segments))
        engine = self._engine_for()
        return Transcript(
            segments=tuple(replace(s, id=i) for i, s in enumerate(segments, start=1)),
            language=stream.language,
            language_probability=stream.language_probability,
            duration=round(self.seconds, 3),
            model=engine.model_name,
            engine=engine.name,
            processing_time=round(time.perf_counter() - self._started, 3),
            speakers=speakers,
            notices=tuple(notices),
        )

    def options(self) -> dict[str, Any]:
        """How the session was asked for, as the saved task's options show it."""
        r = self.request
        return {
            "language": r.language,
            "model": r.model,
            "beam_size": r.beam_size,
            "word_timestamps": True,
            "initial_prompt": r.prompt,
            "diarize": r.diarize,
            "live": {
                "protocol": r.protocol,
                "encoding": r.format.encoding,
                "sample_rate": r.format.sample_rate,
                "started_at": self.started_at.isoformat(),
            },
        }

    def close(self) -> None:
        """Remove the local recording (after it was stored, or when there is none)."""
        if not self.finished:
            self.stream.abandon()
        self.recording.remove()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
