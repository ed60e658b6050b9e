"""Streaming VAD and window packing on real speech: deterministic and bounded."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from tests.media_factory import load
from transcriber.media.vad import Region, SpeechDetector
from transcriber.media.windows import WINDOW_S, WindowBuilder

SPEECH = "ru_more/asterisk_ru/core/demo-instruct.wav"


def regions(audio: np.ndarray, step: int) -> list[Region]:
    d = SpeechDetector()
    out: list[Region] = []
    for i in range(0, len(audio), step):
        out += d.feed(audio[i : i + step])
    return out + d.finish()


def test_chunking_does_not_change_regions(eval_root: Path) -> None:
    audio = load(eval_root / SPEECH)
    a = regions(audio, 16000 * 5)
    b = regions(audio, 7777)
    assert a == b and len(a) >= 2
    assert all(r.seconds <= WINDOW_S for r in a)
    assert all(x.end <= y.start for x, y in itertools.pairwise(a))


def test_silence_and_noise_have_no_speech() -> None:
    rng = np.random.default_rng(1)
    assert regions(np.zeros(16000 * 30, np.float32), 16000) == []
    noise = (rng.standard_normal(16000 * 30) * 0.02).astype(np.float32)
    assert regions(noise, 16000) == []


def test_windows_map_back_and_memory_stays_bounded(eval_root: Path) -> None:
    clip = load(eval_root / SPEECH)
    gap = np.zeros(16000 * 3, np.float32)
    builder = WindowBuilder(SpeechDetector(), time_offset=10.0)
    windows = []
    peak = 0
    for _ in range(12):  # ~16 minutes, fed as a stream
        for chunk in (clip, gap):
            for i in range(0, len(chunk), 80000):
                windows += builder.feed(chunk[i : i + 80000])
                peak = max(peak, len(builder._buf))
    windows += builder.finish()
    assert peak < 16000 * 70, "the builder kept more audio than one window needs"
    assert all(w.duration <= WINDOW_S + 0.01 for w in windows)
    period = (len(clip) + len(gap)) / 16000
    assert windows[0].start_time >= 10.0
    assert windows[-1].end_time <= 10.0 + 12 * period + 0.01
    starts = [w.start_time for w in windows]
    assert starts == sorted(starts)
    w = windows[1]
    first_piece, second_piece = w.pieces[0], w.pieces[-1]
    assert w.to_file_time(0.0) == round(first_piece[1], 3)
    assert w.to_file_time(second_piece[0] + 0.5) == round(second_piece[1] + 0.5, 3)


def test_no_vad_cuts_fixed_windows() -> None:
    builder = WindowBuilder(None)
    audio = np.ones(16000 * 70, np.float32) * 0.1
    windows = list(builder.feed(audio)) + list(builder.finish())
    assert [round(w.duration) for w in windows] == [30, 30, 10]
    assert [w.start_time for w in windows] == [0.0, 30.0, 60.0]
