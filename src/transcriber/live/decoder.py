"""One decode of a stretch of live audio with the shared engine: timed words back.

Runs on a worker thread (never on the event loop). The engine is asked for through
the engine manager at every decode, so that a live session and the file tasks share
one loaded model and the model is not unloaded as idle while a session uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from transcriber.domain import Word
from transcriber.engines.base import DecodeOptions, Engine
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.windows import WINDOW_S, SpeechWindow

# Whisper keeps only the last 223 tokens of a prompt; the text said before the
# utterance is given as context up to about this many characters.
CONTEXT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Decoded:
    """Words of `audio` (stream times), the language used, and its probability when it
    was detected here (None when it was given)."""

    words: tuple[Word, ...]
    language: str | None
    probability: float | None
    avg_logprob: float | None = None


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    audio: np.ndarray  # 16 kHz float32, at most WINDOW_S
    start: float  # stream seconds of audio[0]
    language: str | None  # None: detect
    beam_size: int
    prompt: str | None

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / SAMPLE_RATE


def decode(engine_for: Callable[[], Engine], request: DecodeRequest) -> Decoded:
    """Decode one request. `engine_for` hands out the shared engine (the manager's `get`)."""
    engine = engine_for()
    audio = request.audio[: int(WINDOW_S * SAMPLE_RATE)]
    if not len(audio):
        return Decoded((), request.language, None)
    window = SpeechWindow(
        audio=audio,
        pieces=((0.0, round(request.start, 3)),),
        end_time=request.start + len(audio) / SAMPLE_RATE,
    )
    language, probability = request.language, None
    if language is None:
        language, probability = engine.detect_language([window])
    options = DecodeOptions(
        language=language,
        beam_size=request.beam_size,
        word_timestamps=True,
        initial_prompt=request.prompt,
        recover_gaps=False,  # an utterance is short; a skipped stretch is decoded next time
    )
    words: list[Word] = []
    logprobs: list[float] = []
    for result in engine.transcribe([window], options):
        for segment in result.segments:
            words += segment.words
            if segment.avg_logprob is not None:
                logprobs.append(segment.avg_logprob)
    mean = round(sum(logprobs) / len(logprobs), 4) if logprobs else None
    return Decoded(tuple(words), language, probability, mean)


def prompt_for(user_prompt: str | None, said_before: str) -> str | None:
    """Whisper's prompt for the next utterance: the user's names and terms, then the
    end of what was said before it (context that keeps spelling and style steady)."""
    context = said_before[-CONTEXT_CHARS:]
    if context and len(said_before) > CONTEXT_CHARS:
        context = context.split(" ", 1)[-1]  # from a whole word
    parts = [p.strip() for p in (user_prompt or "", context) if p and p.strip()]
    return " ".join(parts) or None
