"""Split channels: a channel's words that are the other side's echo are left out."""

from __future__ import annotations

import numpy as np

from transcriber.domain import Segment, Word
from transcriber.media.crosstalk import LevelTrack, drop_crosstalk

SR = 16000


def track(*spans: tuple[float, float, float]) -> LevelTrack:
    """A 10 s channel: noise at each (start, end, dBFS), digital silence elsewhere."""
    audio = np.zeros(10 * SR, np.float32)
    rng = np.random.default_rng(0)
    for start, end, db in spans:
        a, b = int(start * SR), int(end * SR)
        audio[a:b] = rng.standard_normal(b - a) * 10 ** (db / 20)
    t = LevelTrack()
    for i in range(0, len(audio), 12345):  # chunks that do not fall on block edges
        t.feed(audio[i : i + 12345])
    return t


def said(speaker: str, *words: tuple[float, float, str]) -> Segment:
    ws = tuple(Word(start=a, end=b, word=f" {w}", probability=0.9) for a, b, w in words)
    text = "".join(w.word for w in ws).strip()
    return Segment(id=0, start=ws[0].start, end=ws[-1].end, text=text, words=ws, speaker=speaker)


def test_echo_is_left_out_and_double_talk_kept() -> None:
    # Left talks 0-4 s, right 5-8 s, both 8.5-9.5 s; each hears the other 25 dB down.
    tracks = {
        "channel 1": track((0, 4, -20), (5, 8, -45), (8.5, 9.5, -20)),
        "channel 2": track((0, 4, -45), (5, 8, -20), (8.5, 9.5, -22)),
    }
    segments = [
        said("channel 1", (0.2, 1.0, "hello"), (1.1, 2.0, "there")),
        said("channel 2", (0.2, 1.0, "hello"), (1.1, 2.0, "there")),  # echo
        said("channel 1", (5.5, 6.0, "yes"), (6.1, 6.1, "yes")),  # echo, a squeezed word
        said("channel 2", (5.5, 6.0, "yes"), (6.1, 6.6, "yes")),
        said("channel 1", (8.6, 9.4, "both")),
        said("channel 2", (8.6, 9.4, "both")),
    ]
    kept, left_out = drop_crosstalk(segments, tracks, origin=0.0)
    assert [(s.speaker, s.start) for s in kept] == [
        ("channel 1", 0.2),
        ("channel 2", 5.5),
        ("channel 1", 8.6),
        ("channel 2", 8.6),
    ]
    assert left_out == 2


def test_a_segment_keeps_its_own_words_and_is_cut_again() -> None:
    tracks = {"channel 1": track((0, 2, -45), (3, 5, -20)), "channel 2": track((0, 2, -20))}
    mixed = said("channel 1", (0.5, 1.5, "echo."), (3.2, 3.8, "mine"), (3.9, 4.5, "too."))
    kept, left_out = drop_crosstalk([mixed], tracks, origin=0.0)
    assert [(s.text, s.start, s.speaker) for s in kept] == [("mine too.", 3.2, "channel 1")]
    assert left_out == 1


def test_one_channel_or_unlabelled_segments_are_left_alone() -> None:
    seg = said("channel 1", (0.5, 1.5, "hi"))
    assert drop_crosstalk([seg], {"channel 1": track((0, 2, -20))}, 0.0) == ([seg], 0)
    plain = said("A", (0.5, 1.5, "hi"))
    tracks = {"channel 1": track((0, 2, -20)), "channel 2": track((0, 2, -60))}
    assert drop_crosstalk([plain], tracks, 0.0) == ([plain], 0)
