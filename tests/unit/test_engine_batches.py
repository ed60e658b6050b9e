"""How the Whisper engine groups speech windows into batches for its model copies."""

from __future__ import annotations

import numpy as np
import pytest

from transcriber.engines.whisper import WhisperEngine, _Encoded
from transcriber.media.windows import SpeechWindow


def windows(n: int) -> list[SpeechWindow]:
    audio = np.zeros(16000, np.float32)
    return [SpeechWindow(audio, ((0.0, float(i)),), float(i) + 1) for i in range(n)]


def sizes(engine: WhisperEngine, ws: list[SpeechWindow]) -> list[int]:
    batches = [b for b, _ in engine._batches(iter(ws))]
    assert [w for b in batches for w in b] == ws  # every window once, in order
    return [len(b) for b in batches]


@pytest.mark.parametrize(
    ("replicas", "n", "expected"),
    [
        (1, 7, [2, 2, 2, 1]),
        (2, 7, [2, 2, 1, 1, 1]),  # the last windows one by one, for both copies
        (2, 8, [2, 2, 2, 1, 1]),
        (2, 3, [1, 1, 1]),
        (2, 1, [1]),
        (2, 0, []),
    ],
)
def test_batches_end_one_window_at_a_time_with_several_copies(
    replicas: int, n: int, expected: list[int]
) -> None:
    engine = WhisperEngine(None, "test", batch_size=2, replicas=replicas)
    assert sizes(engine, windows(n)) == expected


def test_the_windows_whose_language_was_detected_keep_their_encoding() -> None:
    engine = WhisperEngine(None, "test", batch_size=2, replicas=2)
    ws = windows(3)
    kept = _Encoded(tuple(ws[:2]), np.zeros(1), object())
    engine._local.kept = kept
    batches = list(engine._batches(iter(ws)))
    assert [(len(b), e) for b, e in batches] == [(2, kept), (1, None)]
    # Used once: a second transcription in this thread encodes its own windows.
    assert [e for _, e in engine._batches(iter(ws))] == [None, None, None]
