"""Speaker labels through the whole pipeline, the CLI's formats and the API."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_float_wav, write_silence
from transcriber.config import Settings
from transcriber.diarization import der, parse_rttm
from transcriber.diarization.encoder import weights_path
from transcriber.domain import NoticeCode, TranscriptionOptions
from transcriber.errors import ModelError
from transcriber.formats import render
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow


def test_two_speakers_labelled_split_and_scored(
    pipeline: Pipeline, eval_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def decoded_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the speaker pass decoded the file again")

    # The speaker pass reads the stream the transcription decoded (media/spool.py).
    monkeypatch.setattr("transcriber.diarization.speakers.stream_audio", decoded_again)
    row = next(r for r in eval_rows("diarization.jsonl") if r["path"].endswith("sample.wav"))
    t = pipeline.run(eval_root / row["path"], TranscriptionOptions(language="en", diarize=True))
    labels = [s.speaker for s in t.segments]
    assert set(labels) == {"A", "B"} and labels[0] == "A"
    assert [s.label for s in t.speakers] == ["A", "B"]
    assert all(s.seconds > 3 for s in t.speakers)
    assert all(s.words == () for s in t.segments), "words only when asked for"
    hyp = parse_rttm(render(t, "rttm").decode())
    ref = parse_rttm((eval_root / row["rttm"]).read_text())
    result = der(ref, hyp, collar=0.25)
    print(f"\nend-to-end DER on sample.wav (segment level): {result.der:.1%}")
    assert result.der <= 0.30
    assert "diarization" in t.timings
    # The speakers carry their diarization turns, which the RTTM writes.
    assert all(sp.turns and sp.turns[0][0] < sp.turns[-1][1] for sp in t.speakers)
    assert len(hyp) == sum(len(sp.turns) for sp in t.speakers)


def test_word_level_labels_and_fixed_count(pipeline: Pipeline, eval_root: Path) -> None:
    row = eval_rows("diarization.jsonl")[1]
    opts = TranscriptionOptions(language="en", diarize=True, num_speakers=2, word_timestamps=True)
    t = pipeline.run(eval_root / row["path"], opts)
    assert {s.speaker for s in t.segments} == {"A", "B"}
    assert all(w.speaker == s.speaker for s in t.segments for w in s.words if w.speaker)


def test_dvector_method_is_selectable(eval_root: Path, settings: Settings) -> None:
    try:
        weights_path()
    except ModelError as e:
        pytest.skip(e.message)
    chosen = settings.model_copy(update={"diarization_method": "dvector"})
    row = next(r for r in eval_rows("diarization.jsonl") if r["path"].endswith("sample.wav"))
    opts = TranscriptionOptions(language="en", diarize=True)
    t = Pipeline(chosen).run(eval_root / row["path"], opts)
    assert {s.speaker for s in t.segments} == {"A", "B"}
    # One speaker at a time: no turn of one speaker overlaps another's.
    turns = sorted((a, b, sp.label) for sp in t.speakers for a, b in sp.turns)
    assert all(x[1] <= y[0] + 1e-6 for x, y in itertools.pairwise(turns))


def test_single_speaker_stays_one(pipeline: Pipeline, eval_root: Path) -> None:
    t = pipeline.run(eval_root / "en/whisper/jfk.flac", TranscriptionOptions(diarize=True))
    assert {s.speaker for s in t.segments} == {"A"}
    assert [s.label for s in t.speakers] == ["A"]


def test_a_run_without_speech_waits_for_the_speaker_models(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The speaker models load on a thread while the transcription runs; a run that ends
    first (here: nothing to transcribe) waits for it, so that no onnxruntime call is left
    running when a CLI process exits (that aborted the process)."""
    from transcriber.diarization import campplus, segmentation

    segmentation._shared.cache_clear()  # so that this run has them to load
    campplus._shared.cache_clear()
    quiet = write_silence(tmp_path / "quiet.wav", 2.0)
    t = pipeline.run(quiet, TranscriptionOptions(language="en", diarize=True))
    assert t.segments == () and t.speakers == ()
    loading = [x for x in threading.enumerate() if x.name == "speaker-models"]
    assert not any(x.is_alive() for x in loading)
    assert segmentation._shared.cache_info().currsize == 1  # loaded, for the next run


def test_the_chunk_step_setting_reaches_the_speaker_pass(
    eval_root: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TRANSCRIBER_DIARIZATION_STEP_S: the speaker pass cuts its chunks at that step
    instead of the one it picks for the length (10 s from 2 minutes on)."""
    from transcriber.diarization import local, speakers

    steps: list[int] = []

    def recorded(seconds: float | None, step_s: float | None = None) -> int:
        steps.append(local.step_frames_for(seconds, step_s))
        return steps[-1]

    monkeypatch.setattr(speakers, "step_frames_for", recorded)
    row = next(r for r in eval_rows("diarization.jsonl") if r["path"].endswith("sample.wav"))
    opts = TranscriptionOptions(language="en", diarize=True)
    chosen = settings.model_copy(update={"diarization_step_s": 5.0})
    t = Pipeline(chosen).run(eval_root / row["path"], opts)
    assert {s.speaker for s in t.segments} == {"A", "B"}
    assert steps == [local.step_frames_for(None, 5.0)]
    assert steps[0] * local.SECONDS_PER_FRAME == pytest.approx(5.0, abs=0.02)
    Pipeline(settings).run(eval_root / row["path"], opts)  # 30 s: the step for its length
    assert steps[1] == local.step_frames_for(30.0) != steps[0]


def test_fewer_voices_than_asked_for_is_said(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    """Three seconds of one voice hold too little to part into two speakers: the labels
    are what the audio holds, and a notice says that fewer were found than asked for."""
    jfk = load(eval_root / "en/whisper/jfk.flac")
    short = write_float_wav(tmp_path / "short.wav", jfk[: 3 * 16000])
    t = pipeline.run(short, TranscriptionOptions(language="en", diarize=True, num_speakers=2))
    assert t.segments and {s.speaker for s in t.segments} == {"A"}
    said = [n for n in t.notices if n.code is NoticeCode.fewer_speakers]
    assert len(said) == 1 and said[0].values == {"asked": 2, "found": 1}
    # Asked for one, or for none, the same audio has nothing to say about the count.
    t = pipeline.run(short, TranscriptionOptions(language="en", diarize=True))
    assert NoticeCode.fewer_speakers not in {n.code for n in t.notices}
