"""Streaming VAD and window packing on real speech: deterministic and bounded."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load
from transcriber.media.vad import Pause, Region, SpeechDetector
from transcriber.media.windows import (
    CUT_SEARCH_S,
    WINDOW_S,
    SpeechWindow,
    WindowBuilder,
    best_cut,
)

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


def stream_windows(builder: WindowBuilder, audio: np.ndarray) -> list[SpeechWindow]:
    out: list[SpeechWindow] = []
    for i in range(0, len(audio), 80000):
        out += builder.feed(audio[i : i + 80000])
    return out + list(builder.finish())


def lecture(eval_root: Path) -> np.ndarray:
    """Several minutes of real speech with only short gaps, as in a talk."""
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:25]
    gap = np.zeros(8000, np.float32)
    return np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])


def test_regions_list_their_inner_pauses(eval_root: Path) -> None:
    found = regions(lecture(eval_root), 16000 * 5)
    assert any(r.pauses for r in found)
    for r in found:
        ats = [p.at for p in r.pauses]
        assert ats == sorted(ats) and all(r.start < a < r.end for a in ats)
        assert all(p.frames >= 1 for p in r.pauses)


def test_region_split_keeps_pauses_on_their_side() -> None:
    r = Region(0, 16000 * 10, (Pause(16000, 3), Pause(16000 * 5, 8), Pause(16000 * 8, 2)))
    head, tail = r.split(16000 * 5)
    assert head == Region(0, 16000 * 5, (Pause(16000, 3),))
    assert tail == Region(16000 * 5, 16000 * 10, (Pause(16000 * 8, 2),))
    with pytest.raises(ValueError, match="outside region"):
        r.split(16000 * 10)


def test_best_cut_prefers_a_long_pause_near_the_end_of_the_room() -> None:
    pauses = (
        Pause(16000 * 1, 20),
        Pause(16000 * 15, 9),
        Pause(16000 * 22, 3),
        Pause(16000 * 27, 2),
    )
    r = Region(0, 16000 * 29, pauses)
    assert best_cut(r, 16000 * 23) == Pause(16000 * 15, 9)  # longer, and close enough
    assert best_cut(r, 16000 * 28) == Pause(16000 * 22, 3)  # the 9-frame pause: 12 s back
    assert best_cut(r, 16000 * 28, search_s=4.0) == Pause(16000 * 27, 2)  # the live look-back
    assert best_cut(r, 16000 * 1) is None  # would leave under MIN_FILL_S in the window


def test_windows_are_packed_full_by_cutting_at_pauses(eval_root: Path) -> None:
    audio = lecture(eval_root)
    whole = regions(audio, 16000 * 5)
    windows = stream_windows(WindowBuilder(SpeechDetector()), audio)
    # No speech is lost or doubled: the windows hold exactly the regions' samples.
    assert sum(len(w.audio) for w in windows) == sum(r.end - r.start for r in whole)
    assert all(w.duration <= WINDOW_S + 1e-6 for w in windows)
    # Every window but the last is cut within CUT_SEARCH_S of a full one, and most are
    # nearly full; whole-region packing left ~1/4 empty here.
    fill = [w.duration / WINDOW_S for w in windows[:-1]]
    least = (WINDOW_S - CUT_SEARCH_S - 1.0) / WINDOW_S  # the last pause that fits, 1 s early
    assert min(fill) > least and sum(fill) / len(fill) > 0.8, fill
    cuts = {p.at for r in whole for p in r.pauses}
    region_ends = {r.end for r in whole}
    for w in windows[:-1]:
        end_sample = round(w.end_time * 16000)
        assert end_sample in cuts or end_sample in region_ends


def test_resume_inside_a_cut_region_gives_the_same_windows(eval_root: Path) -> None:
    audio = lecture(eval_root)
    full = stream_windows(WindowBuilder(SpeechDetector(), time_offset=2.0), audio)
    cut_inside = [
        i for i, w in enumerate(full[:-1]) if abs(full[i + 1].start_time - w.end_time) < 1e-6
    ]
    assert cut_inside, "expected at least one region cut between two windows"
    i = cut_inside[0]
    resumed = stream_windows(
        WindowBuilder(SpeechDetector(), time_offset=2.0, skip_until=round(full[i].end_time, 3)),
        audio,
    )
    assert len(resumed) == len(full) - i - 1
    for a, b in zip(full[i + 1 :], resumed, strict=True):
        assert a.pieces == b.pieces
        assert np.array_equal(a.audio, b.audio)


def test_a_word_maps_into_the_piece_that_holds_most_of_it() -> None:
    # 6 s of speech, then (after 180 s cut out as silence) speech again at 186 s.
    w = SpeechWindow(np.zeros(16000 * 10, np.float32), ((0.0, 0.0), (6.0, 186.0)), 190.0)
    assert w.span_to_file_time(1.0, 1.5) == (1.0, 1.5)
    assert w.span_to_file_time(7.0, 7.5) == (187.0, 187.5)
    # Begins a little before the cut by its estimated time: it was spoken after it.
    assert w.span_to_file_time(5.9, 6.6) == (186.0, 186.6)
    # Ends a little after the cut: it was spoken before it.
    assert w.span_to_file_time(5.5, 6.1) == (5.5, 6.0)
    # Never a span across the silence, whatever the word's times.
    for a, b in ((5.99, 6.01), (0.0, 10.0), (5.0, 7.0)):
        start, end = w.span_to_file_time(a, b)
        assert 0 <= end - start <= b - a
