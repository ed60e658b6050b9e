"""Finding the speech a window's transcript skipped, and cutting it out of the window."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from transcriber.engines.whisper import RECOVER_GAP_S, is_confident, skipped_spans
from transcriber.media.windows import SpeechWindow


def raw(*words: tuple[float, float], **scores: float) -> list[dict[str, Any]]:
    seg = {"text": " x", "no_speech_prob": 0.1, "avg_logprob": -0.3, "compression_ratio": 1.5}
    seg.update(scores)
    seg["words"] = [{"start": a, "end": b, "word": " w", "probability": 0.9} for a, b in words]
    return [seg]


def spoken(start: float, end: float) -> list[tuple[float, float]]:
    """Words of half a second each, back to back, from `start` to `end`."""
    edges = np.arange(start, end + 1e-9, 0.5)
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def test_a_long_wordless_stretch_is_found_wherever_it_is() -> None:
    # Words cover 0.5-6 s and 12-14 s of a 28 s window: 6-12 s and 14-28 s were skipped.
    r = raw(*spoken(0.5, 6.0), *spoken(12.0, 14.0))
    assert skipped_spans(r, 28.0) == [(6.0, 12.0), (14.0, 28.0)]
    # Ordinary pauses between words are not gaps.
    assert skipped_spans(raw(*spoken(0.5, 9.0), *spoken(10.5, 20.0)), 21.0) == []
    # A late first word leaves a gap at the start.
    late = RECOVER_GAP_S + 1
    assert skipped_spans(raw(*spoken(late, 20.0)), 20.5) == [(0.0, late)]


def test_a_word_stretched_over_seconds_covers_nothing() -> None:
    # Whisper's alignment lays a word over audio its text skipped: 6-12 s here.
    r = raw(*spoken(0.5, 6.0), (6.0, 12.5), *spoken(12.5, 14.0))
    assert skipped_spans(r, 14.5) == [(6.0, 12.5)]
    # A long word that is still a word (2 s) covers its time.
    assert skipped_spans(raw(*spoken(0.5, 6.0), (6.0, 8.0), *spoken(8.0, 14.0)), 14.5) == []


def test_a_window_without_any_word_is_not_asked_again() -> None:
    assert skipped_spans([], 30.0) == []
    assert skipped_spans(raw(), 30.0) == []


def test_a_second_look_must_be_confident() -> None:
    assert is_confident(raw((0, 1))[0])
    assert not is_confident(raw((0, 1), no_speech_prob=0.7)[0])
    assert not is_confident(raw((0, 1), avg_logprob=-1.2)[0])
    assert not is_confident(raw((0, 1), compression_ratio=3.0)[0])


def test_a_slice_keeps_the_map_to_file_time() -> None:
    # Two pieces glued: 0-10 s of the window is file 100-110 s, 10-20 s is file 200-210 s.
    audio = np.arange(16000 * 20, dtype=np.float32)
    w = SpeechWindow(audio=audio, pieces=((0.0, 100.0), (10.0, 200.0)), end_time=210.0)
    part = w.slice(6.0, 15.0)
    assert part.duration == pytest.approx(9.0)
    assert part.audio[0] == audio[16000 * 6]
    assert part.pieces == ((0.0, 106.0), (4.0, 200.0))
    assert part.to_file_time(1.0) == 107.0
    assert part.to_file_time(5.0) == 201.0
    assert part.end_time == 205.0
    tail = w.slice(12.0, 25.0)  # past the end is clipped
    assert tail.pieces == ((0.0, 202.0),) and tail.end_time == 210.0
    with pytest.raises(ValueError, match="empty slice"):
        w.slice(20.0, 21.0)
