"""A live session in process, on the real model: a long utterance is finalised in bounded
pieces, the language is detected and kept, speakers are labelled as they speak, and a
commit ends the utterance at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load
from transcriber.config import Settings
from transcriber.domain import Transcript
from transcriber.engines.base import Engine
from transcriber.engines.registry import EngineManager
from transcriber.evaluation.wer import corpus_wer, normalize
from transcriber.live.audio import AudioFormat
from transcriber.live.events import (
    Final,
    LiveEvent,
    Marker,
    SpeechStarted,
    SpeechStopped,
    UtteranceDone,
)
from transcriber.live.session import LiveRequest, LiveSession, LiveTuning
from transcriber.media.vad import VadParams

pytestmark = pytest.mark.slow

MONOLOGUE = "ru_more/asterisk_ru/core/conf-adminmenu-162.wav"  # 26 s of prompts, short pauses
buffered: list[float] = []  # the open utterance's unfinished audio after each push

EngineFor = Callable[[], Engine]


@pytest.fixture(scope="module")
def engines(settings: Settings) -> Iterator[EngineFor]:
    """The default model, held for the module as a live session holds it."""
    with EngineManager(settings).use() as engine:
        yield lambda: engine


def tuning(silence_ms: int = 600, max_buffer_s: float = 15.0) -> LiveTuning:
    return LiveTuning(
        VadParams(min_silence_ms=silence_ms, speech_pad_ms=300), 1.0, max_buffer_s, 3600.0
    )


def run(
    engines: EngineFor,
    audio: np.ndarray,
    language: str | None,
    tune: LiveTuning,
    speed: float = 0.0,
    diarize: bool = False,
    commit_at: float | None = None,
) -> tuple[Transcript, list[LiveEvent]]:
    """Push 16 kHz audio in 100 ms frames (paced at `speed` times real time, 0: at once)."""
    pcm = (audio.clip(-1, 1) * 32767).astype("<i2").tobytes()
    request = LiveRequest(AudioFormat(), language, None, diarize, "base", 5, "ws")
    buffered.clear()

    async def main() -> tuple[Transcript, list[LiveEvent]]:
        with ThreadPoolExecutor(4) as pool:
            session = LiveSession(request, tune, engines, pool)
            began = time.monotonic()
            for i in range(0, len(pcm), 3200):
                if speed:
                    await asyncio.sleep(
                        max(0.0, began + (i + 3200) / 32000 / speed - time.monotonic())
                    )
                await session.push(pcm[i : i + 3200])
                buffered.append(session.stream.buffered_seconds)
                if commit_at is not None and i / 32000 < commit_at <= (i + 3200) / 32000:
                    await session.commit()
                    await session.mark("committed")
            await session.finish()
            try:  # as a saved session: its transcript before its recording goes
                transcript = await asyncio.to_thread(session.transcript)
            finally:
                session.close()
        events = []
        while not session.stream.events.empty():
            event = session.stream.events.get_nowait()
            assert event is not None
            events.append(event)
        return transcript, events

    return asyncio.run(main())


def test_a_long_utterance_is_made_final_in_bounded_pieces(
    engines: EngineFor, eval_root: Path
) -> None:
    row = next(r for r in eval_rows("asr.jsonl") if r["path"] == MONOLOGUE)
    audio = load(eval_root / MONOLOGUE)
    # Silence must be 3 s to end an utterance: the whole prompt is one, as a monologue is.
    transcript, events = run(engines, audio, "ru", tuning(3000, max_buffer_s=6.0), speed=1.0)
    stopped = next(i for i, e in enumerate(events) if isinstance(e, SpeechStopped))
    early = [e for e in events[:stopped] if isinstance(e, Final)]
    assert len(early) >= 2, "no final came before the speech ended"
    assert {e.utterance for e in events if isinstance(e, Final)} == {1}
    # The buffer is cut behind the finals: it never holds the whole 26 s utterance. (How
    # far past 6 s it goes depends on how fast two decodes in a row agree on this box.)
    assert max(buffered) < 20.0, max(buffered)
    finals = [e.segment for e in events if isinstance(e, Final)]
    text = " ".join(s.text for s in finals)
    assert corpus_wer([(row["text"], text)], "ru") < 0.3, text
    assert transcript.text == text


def test_the_language_is_detected_once_and_kept(engines: EngineFor, eval_root: Path) -> None:
    audio = load(eval_root / "en/whisper/jfk.flac")
    transcript, events = run(engines, audio, None, tuning())
    assert transcript.language == "en" and 0.5 < (transcript.language_probability or 0) <= 1
    assert "ask not what your country" in " ".join(normalize(transcript.text, "en"))
    assert sum(isinstance(e, UtteranceDone) for e in events) == sum(
        isinstance(e, SpeechStarted) for e in events
    )


def test_speakers_are_labelled_as_they_speak(engines: EngineFor, eval_root: Path) -> None:
    row = eval_rows("diarization.jsonl")[0]
    audio = load(eval_root / row["path"])
    transcript, events = run(engines, audio, None, tuning(), diarize=True)
    finals = [e.segment for e in events if isinstance(e, Final)]
    assert finals and all(s.speaker is not None for s in finals)
    assert len(transcript.speakers) == 2, transcript.speakers
    assert {s.speaker for s in transcript.segments} == {"A", "B"}


def test_a_commit_ends_the_utterance_at_once(engines: EngineFor, eval_root: Path) -> None:
    audio = load(eval_root / "en/whisper/jfk.flac")[: 16000 * 3]  # "And so my fellow Americans"
    _, events = run(engines, audio, "en", tuning(), commit_at=2.5)
    kinds = [type(e).__name__ for e in events]
    mark = kinds.index("Marker")
    assert "SpeechStopped" in kinds[:mark] and "UtteranceDone" in kinds[:mark], kinds
    assert isinstance(events[mark], Marker) and events[mark].token == "committed"
    first = next(e for e in events if isinstance(e, UtteranceDone))
    assert "fellow" in first.text.lower()
