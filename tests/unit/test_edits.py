"""Edit revisions, word re-timing, the countdown of a running task, and waveform peaks."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from transcriber.domain import Segment, SpeakerStat, Transcript, Word
from transcriber.edits import (
    Revision,
    SegmentChange,
    apply,
    merge_names,
    retime,
    spread,
    undo_target,
    with_names,
)
from transcriber.errors import OptionError
from transcriber.jobs.eta import Cost, Countdown, Speeds
from transcriber.media.peaks import PeakMeter, shrink


def w(word: str, start: float, end: float) -> Word:
    return Word(start, end, f" {word}", probability=0.9, speaker="A")


OLD = (w("ask", 1.0, 1.4), w("not", 1.5, 1.8), w("what", 1.9, 2.2), w("your", 2.3, 2.5),
       w("country", 2.6, 3.1), w("can", 3.2, 3.4))  # fmt: skip


def test_unchanged_words_keep_their_times_and_new_ones_sit_between() -> None:
    aligned = [w("ask", 0.9, 1.3), w("not", 1.4, 1.9), w("what", 1.9, 2.3), w("your", 2.2, 2.6),
               w("great", 2.5, 2.8), w("nation", 2.8, 3.3), w("can", 3.3, 3.5)]  # fmt: skip
    out = retime(OLD, aligned, 0.8, 3.6)
    assert [x.word.strip() for x in out] == ["ask", "not", "what", "your", "great", "nation", "can"]
    assert out[:4] == OLD[:4] and out[-1] == OLD[-1]  # same times, same confidence
    new = out[4:6]
    for x in new:
        assert OLD[3].end <= x.start <= x.end <= OLD[5].start
        assert x.probability == 1.0  # a person wrote it
    assert new[0].end <= new[1].start


def test_new_words_are_kept_inside_the_segment_and_in_order() -> None:
    # The aligner put the added words far outside: they are brought in, in order.
    aligned = [w("so", -3.0, -2.0), *OLD, w("tonight", 9.0, 9.5), w("friends", 8.0, 8.5)]
    out = retime(OLD, aligned, 0.8, 3.6)
    assert out[0].word.strip() == "so" and out[-2].word.strip() == "tonight"
    for a, b in itertools.pairwise(out):
        assert a.end <= b.start
    assert all(0.8 <= x.start <= x.end <= 3.6 for x in out)
    # Placed on top of each other at an edge, they are spread over the room there is.
    assert out[-1].start > out[-2].start


def test_spread_lays_words_over_the_span_by_length() -> None:
    words = spread("a longer word", 10.0, 11.4)
    assert [x.word for x in words] == [" a", " longer", " word"]
    assert words[0].start == 10.0 and words[-1].end == pytest.approx(11.4 - 1.4 / 14, abs=0.01)
    assert words[1].end - words[1].start > words[0].end - words[0].start


def transcript() -> Transcript:
    segs = (
        Segment(1, 0.0, 2.0, "Hello there.", speaker="A"),
        Segment(2, 2.0, 5.0, "General Kenobi.", speaker="B"),
    )
    return Transcript(segs, "en", 1.0, 5.0, speakers=(SpeakerStat("A", 2.0), SpeakerStat("B", 3.0)))


def test_revisions_apply_in_order_and_undo_takes_back_the_latest_live_one() -> None:
    t = transcript()
    first = Revision(1, (SegmentChange(t.segments[0], replace(t.segments[0], text="Hi.")),), {})
    moved = replace(t.segments[1], speaker="A")
    second = Revision(2, (SegmentChange(t.segments[1], moved),), {"A": "Anna"})
    edited = apply(t, [first, second])
    assert [s.text for s in edited.transcript.segments] == ["Hi.", "General Kenobi."]
    assert edited.revision == 2 and edited.edited == frozenset({1, 2})
    assert edited.transcript.speakers == (SpeakerStat("A", 5.0),)  # B has nothing left
    named = edited.named()
    assert {s.speaker for s in named.segments} == {"Anna"}
    assert undo_target([first, second]) is second
    undo = Revision(3, (SegmentChange(moved, t.segments[1]),), {}, undoes=2)
    assert undo_target([first, second, undo]) is first
    again = apply(t, [first, second, undo])
    assert again.edited == frozenset({1}) and again.speaker_names == {}
    assert undo_target([first, second, undo, Revision(4, (), {}, undoes=1)]) is None
    assert apply(t, []).revision == 0 and apply(t, []).transcript is t


def test_names_are_checked_merged_and_applied_to_words() -> None:
    names = merge_names({"A": "Anna"}, {"B": "  Boris   Petrov ", "A": ""})
    assert names == {"B": "Boris Petrov"}
    with pytest.raises(OptionError):
        merge_names({}, {"<script>": "x"})
    t = replace(transcript(), segments=(replace(transcript().segments[1], words=(w("x", 2, 3),)),))
    renamed = with_names(t, {"B": "Boris"})
    assert renamed.segments[0].speaker == "Boris"
    assert renamed.segments[0].words[0].speaker == "A"  # words keep their own labels


def test_the_cost_of_a_file_is_a_start_up_plus_a_rate_fitted_to_measured_runs() -> None:
    line = Cost.fit([(60.0, 8.0), (600.0, 26.0), (120.0, 10.0)])
    assert line is not None
    assert line.start_s == pytest.approx(6.0, abs=0.1) and line.per_s == pytest.approx(1 / 30)
    one = Cost.fit([(76.0, 8.4)])  # one length only: part start-up, the rest per second
    assert one is not None and 0 < one.start_s <= 6.0
    assert one.of(76.0) == pytest.approx(8.4)
    assert Cost.fit([]) is None

    stored = [({"model": "base"}, 8.0, 60.0), ({"model": "base"}, 26.0, 600.0),
              ({"model": "base", "diarize": True}, 40.0, 600.0)]  # fmt: skip
    speeds = Speeds(lambda: stored)
    assert speeds.cost({"model": "base"}).of(300.0) == pytest.approx(16.0)
    assert speeds.cost({"model": "base", "diarize": True}).of(600.0) == pytest.approx(40.0)
    assert speeds.cost({"model": "tiny.en"}).of(100.0) > 0  # nothing measured: the default
    # What this process measured itself (model loading left out) comes first.
    speeds.observe({"model": "base"}, 4.0, 60.0)
    speeds.observe({"model": "base"}, 13.0, 600.0)
    assert speeds.cost({"model": "base"}).of(300.0) == pytest.approx(8.0)


def test_the_countdown_starts_with_the_work_and_never_jumps_up() -> None:
    clock = Countdown(600.0, Cost(0.0, 0.1))
    assert clock.seconds_left(0.0, now=-5.0) is None  # loading the model: no estimate yet
    clock.begin(now=0.0)
    clock.begin(now=3.0)  # once only
    assert clock.seconds_left(0.0, now=0.0) == pytest.approx(60.0)  # right from the start
    assert clock.seconds_left(0.0, now=10.0) == pytest.approx(50.0)  # counts down
    # Running at half the expected speed: the end moves later, a quarter at a time.
    left = clock.seconds_left(0.1, now=12.0)
    assert left is not None and 48.0 < left < 60.0
    later = clock.seconds_left(0.1, now=13.0)
    assert later is not None and later > left - 1.0
    assert clock.worked(now=20.0) == pytest.approx(20.0)
    assert Countdown(None, Cost(0.0, 0.1), started=0.0).seconds_left(0.0, now=5.0) is None


def test_peaks_are_kept_by_position_and_shrunk_to_the_width_asked() -> None:
    meter = PeakMeter(start=1.5)
    tone = np.full(16000, 0.5, np.float32)
    meter.feed(np.zeros(16000, np.float32), 0)
    meter.feed(tone, 16000)
    meter.feed(np.full(8000, 0.9, np.float32), 16000)  # another channel, louder: kept
    levels = meter.levels()
    assert len(levels) == 20 and levels[:10].max() == 0
    assert levels[10] > levels[15] > 0
    out = shrink(meter.to_json(), 4)
    assert out["start"] == 1.5 and len(out["peaks"]) == 4
    assert out["seconds_per_peak"] == pytest.approx(0.5)
    assert out["peaks"][0] == 0 and out["peaks"][2] > out["peaks"][3] > 0
    assert len(shrink(meter.to_json(), 1000)["peaks"]) == 20
