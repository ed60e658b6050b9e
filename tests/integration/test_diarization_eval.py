"""Diarization on real recordings: DER and speaker count on the dev set, one speaker where
there is one, and what it costs. Run with -s (or -rA) to see the numbers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import EVAL, eval_dir, eval_rows
from transcriber.diarization import INSTALL_HINT, der, diarize, parse_rttm
from transcriber.diarization.encoder import default_weights
from transcriber.errors import ModelError
from transcriber.media.decode import stream_audio
from transcriber.media.vad import Region, SpeechDetector

pytestmark = pytest.mark.slow

MAX_DER = 0.30


@pytest.fixture(scope="module", autouse=True)
def weights() -> None:
    try:
        default_weights()
    except ModelError:
        if os.environ.get("CI"):
            pytest.fail(f"resemblyzer weights are missing in CI: {INSTALL_HINT}")
        pytest.skip(f"resemblyzer weights are not installed ({INSTALL_HINT})")


def speech_regions(path: Path) -> list[Region]:
    detector = SpeechDetector()
    regions: list[Region] = []
    for chunk in stream_audio(path):
        regions += detector.feed(chunk)
    return regions + detector.finish()


def _dev_rows() -> list[dict[str, object] | None]:
    # Read at collection time; without the eval folder one case remains, which skips.
    return eval_rows("diarization.jsonl") if (EVAL / "diarization.jsonl").is_file() else [None]


@pytest.mark.parametrize(
    "row", _dev_rows(), ids=lambda r: Path(str(r["path"])).stem if r else "missing"
)
def test_dev_set_der_and_speaker_count(row: dict[str, object] | None) -> None:
    eval_root = eval_dir()
    assert row is not None
    path = eval_root / str(row["path"])
    turns = diarize(path, speech_regions(path))
    reference = parse_rttm((eval_root / str(row["rttm"])).read_text())
    # The AMI excerpts are scored on 0-30 s only (their UEM); the others are 30 s long.
    result = der(reference, turns, collar=0.25, scored=(0.0, float(str(row["duration_s"]))))
    found = len({t.speaker for t in turns})
    missed, false_alarm, confusion = result.rates
    print(
        f"\n{path.name}: DER {result.der:.1%} (missed {missed:.1%}, false alarm"
        f" {false_alarm:.1%}, confusion {confusion:.1%}); speakers {found},"
        f" expected {row['num_speakers']}"
    )
    assert found == row["num_speakers"]
    assert result.der <= MAX_DER


def test_single_speakers_come_out_as_one(eval_root: Path) -> None:
    ru = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru" and r["sample_rate"] == 16000)
    for rel in ("en/whisper/jfk.flac", ru["path"]):
        path = eval_root / rel
        turns = diarize(path, speech_regions(path))
        speakers = sorted({t.speaker for t in turns})
        print(f"\n{path.name}: speakers {speakers}")
        assert speakers == ["A"]


def test_speaker_count_can_be_forced(eval_root: Path) -> None:
    path = eval_root / "en/whisper/jfk.flac"
    turns = diarize(path, speech_regions(path), num_speakers=2)
    assert {t.speaker for t in turns} == {"A", "B"}
    offset = diarize(path, speech_regions(path), time_offset=100.0)
    assert offset[0].start >= 100.0


def test_cost_per_audio_minute(eval_root: Path) -> None:
    row = eval_rows("diarization.jsonl")[0]
    path = eval_root / row["path"]
    regions = speech_regions(path)
    diarize(path, regions)  # warm up: imports and first allocations
    wall, cpu = time.perf_counter(), time.process_time()
    diarize(path, regions)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    minutes = float(row["duration_s"]) / 60
    print(
        f"\n{path.name}: diarization {wall:.2f} s wall, {cpu:.2f} s CPU for"
        f" {row['duration_s']} s of audio = {wall / minutes:.2f} s wall per audio minute"
        f" (RTF {wall / (minutes * 60):.3f})"
    )
    # Loose on purpose: a busy machine can slow it several times (see docs/diarization.md).
    assert wall < 0.2 * minutes * 60, "diarization should cost a small fraction of real time"
