"""Transcribing a part of a file (`--start/--end`, `start/end`, AssemblyAI's
`audio_start_from/audio_end_at`): exact samples, file-time stamps, early stop, refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import eval_rows
from tests.integration.conftest import make_client
from tests.integration.test_api import JFK, assert_error, upload, wait
from tests.integration.test_cli import cli
from tests.media_factory import load, resample, write_audio
from transcriber.domain import Clip, Progress, TranscriptionOptions
from transcriber.errors import OptionError, TruncatedMediaError, UploadTooLargeError
from transcriber.evaluation.wer import corpus_wer
from transcriber.media import probe
from transcriber.media.decode import _stream, stream_audio
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow
RATE = 16000


def _noise(seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_a_clip_is_exactly_that_slice_of_the_stream(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "n.wav", _noise(20.0))
    whole = load(path)
    part = np.concatenate(list(stream_audio(path, clip=Clip(3.25, 11.5))))
    assert np.array_equal(part, whole[52_000:184_000])
    tail = np.concatenate(list(stream_audio(path, clip=Clip(15.0))))
    assert np.array_equal(tail, whole[240_000:])
    # A clip running past the end simply ends with the audio.
    late = np.concatenate(list(stream_audio(path, clip=Clip(18.0, 500.0))))
    assert np.array_equal(late, whole[288_000:])


@pytest.mark.parametrize(
    ("name", "codec", "rate", "exact"),
    [("a.wav", "pcm_s16le", 16000, True), ("a.flac", "flac", 16000, True),
     ("a.ogg", "libopus", 48000, True), ("a.m4a", "aac", 44100, False),
     ("a.mkv", "libopus", 48000, False)],
)  # fmt: skip
def test_a_clip_far_into_a_file_is_reached_by_seeking(
    tmp_path: Path, name: str, codec: str, rate: int, exact: bool
) -> None:
    """The decoder jumps to shortly before the clip instead of decoding all that comes
    before it, and the clip's samples are those a decode from the start gives (to the
    sample in PCM, FLAC and Ogg; within a millisecond where a codec's delay or the
    resampler's phase moves them)."""
    path = write_audio(tmp_path / name, resample(_noise(150.0), rate), codec=codec, rate=rate)
    positions = [at for at, _ in _stream(path, None, 5.0, seek_s=98.0)]
    assert 80 * RATE <= positions[0] <= 98 * RATE  # not 0: the start was never decoded
    whole = load(path)
    part = np.concatenate(list(stream_audio(path, clip=Clip(100.0, 112.5))))
    assert len(part) == int(12.5 * RATE)
    ref = whole[100 * RATE : 100 * RATE + len(part)]
    if exact:
        assert np.array_equal(part, ref)
    else:
        inner = part[RATE:-RATE]
        lag = max(range(-32, 33), key=lambda k: float(np.dot(inner, np.roll(ref, k)[RATE:-RATE])))
        assert abs(lag) <= RATE // 1000, lag
    # mp3 does not seek by time: it is decoded from the start, as before.
    mp3 = write_audio(tmp_path / "a.mp3", _noise(70.0), codec="libmp3lame")
    assert next(_stream(mp3, None, 5.0, seek_s=65.0))[0] == 0


def test_decoding_stops_at_the_clips_end(tmp_path: Path) -> None:
    """A file cut off at 60%: reading it whole finds the loss; a clip that ends before
    the cut never reads that far, so it is transcribed without complaint."""
    path = write_audio(tmp_path / "cut.flac", _noise(30.0), codec="flac")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(TruncatedMediaError):
        list(stream_audio(path))
    part = np.concatenate(list(stream_audio(path, clip=Clip(2.0, 8.0))))
    assert len(part) == 6 * RATE


def test_a_clip_after_the_end_is_refused_by_name(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short.wav", _noise(4.0))
    with pytest.raises(OptionError, match=r"short.wav: the clip starts at 9 s, but the audio"):
        list(stream_audio(path, clip=Clip(9.0)))
    with pytest.raises(OptionError, match=r"the audio is only 4.0 s long"):
        probe(path).check(Clip(4.0), None)
    with pytest.raises(UploadTooLargeError, match=r"the clip is 3 s long; the limit is 2 s"):
        probe(path).check(Clip(1.0), 2.0)
    probe(path).check(Clip(1.0, 2.5), 2.0)  # 1.5 s of it: within the limit


def _joined(eval_root: Path, tmp_path: Path) -> tuple[Path, float, str]:
    """A minute of silence, a Russian clip, 1.5 s of silence, then three others: (file,
    where the second part starts, the second part's reference). The second part is far
    enough in for a clip of it to be reached by seeking."""
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"]
    first, rest = rows[0], rows[1:4]
    gap = np.zeros(int(1.5 * RATE), np.float32)
    lead = np.zeros(60 * RATE, np.float32)
    head = np.concatenate([lead, load(eval_root / first["path"]), gap])
    tail = np.concatenate([np.concatenate([load(eval_root / r["path"]), gap]) for r in rest])
    path = write_audio(tmp_path / "joined.flac", np.concatenate([head, tail]), codec="flac")
    return path, len(head) / RATE, " ".join(r["text"] for r in rest)


def test_the_pipeline_transcribes_only_the_clip_in_file_time(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    path, second, reference = _joined(eval_root, tmp_path)
    reports: list[Progress] = []
    clip = Clip(second - 0.5)
    t = pipeline.run(path, TranscriptionOptions(language="ru", clip=clip),
                     on_progress=reports.append)  # fmt: skip
    length = probe(path).duration - clip.start  # type: ignore[operator]
    assert t.duration == pytest.approx(length, abs=0.05)
    assert t.segments and t.segments[0].start >= clip.start
    assert corpus_wer([(reference, t.text)], "ru") < 0.3, t.text
    assert "месте" not in t.text.lower()  # a word of the first clip
    assert reports[-1].fraction == 1.0 and reports[-1].audio_total == pytest.approx(length)

    # Only the first part, with speakers: diarization reads the same clip.
    t = pipeline.run(path, TranscriptionOptions(language="ru", clip=Clip(0, second - 0.3),
                                                diarize=True))  # fmt: skip
    assert t.duration == pytest.approx(second - 0.3, abs=0.05)
    assert "на его месте" in t.text.lower() and t.segments[-1].end <= second
    assert {s.speaker for s in t.segments} == {"A"}


def test_cli_start_and_end(eval_root: Path, tmp_path: Path, model_cache: Path) -> None:
    env = {"TRANSCRIBER_MODEL_DIR": str(model_cache)}
    jfk = eval_root / JFK
    r = cli("transcribe", str(jfk), "-l", "en", "-f", "json", "-o", str(tmp_path),
            "--start", "0:02.5", "--end", "9", env_extra=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "jfk.json").read_text())
    assert doc["duration"] == pytest.approx(6.5, abs=0.05)
    assert "ask not what your country" in doc["text"].lower()
    assert all(2.5 <= s["start"] <= s["end"] <= 9.0 for s in doc["segments"]), doc["segments"]
    for args, message in [
        (["--start", "1:75"], "'1:75' is not a time"),
        (["--start", "8", "--end", "0:03"], "the clip's end (3 s) must come after its start"),
        (["--start", "30"], "jfk.flac: the clip starts at 30 s, but the audio is only 11.0 s"),
    ]:
        r = cli("transcribe", str(jfk), "-o", str(tmp_path / "x"), *args, env_extra=env)
        assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.fixture
def client(tmp_path: Path, model_cache: Path) -> Any:
    with make_client(tmp_path, model_cache, workers=1) as c:
        yield c


def test_api_tasks_and_v2_transcribe_a_clip(client: TestClient, eval_root: Path) -> None:
    jfk = eval_root / JFK
    r = upload(client, jfk, language="en", start="2.5", end="0:09")
    assert r.status_code == 202, r.text
    assert r.json()["options"]["clip"] == {"start": 2.5, "end": 9.0}
    assert r.json()["duration"] == pytest.approx(6.5)  # the part, as the task list shows it
    task = wait(client, r.json()["id"])
    transcript = client.get(f"/api/tasks/{task['id']}/result", params={"format": "json"}).json()
    assert task["status"] == "completed" and transcript["duration"] == pytest.approx(6.5, abs=0.05)
    assert "country" in transcript["text"] and transcript["segments"][0]["start"] >= 2.5

    assert_error(upload(client, jfk, start="soon"), 422, "invalid_option")
    assert_error(upload(client, jfk, start="5", end="5"), 422, "invalid_option")
    late = upload(client, jfk, start="60")
    assert_error(late, 422, "invalid_option")
    assert "jfk.flac: the clip starts at 60 s" in late.json()["error"]["message"]

    # AssemblyAI's fields, in milliseconds, echoed back as the hosted API does.
    url = client.post("/v2/upload", content=jfk.read_bytes()).json()["upload_url"]
    body = {"audio_url": url, "audio_start_from": 2500, "audio_end_at": 9000}
    made = client.post("/v2/transcript", json=body).json()
    assert (made["audio_start_from"], made["audio_end_at"]) == (2500, 9000)
    deadline = time.monotonic() + 120
    while (got := client.get(f"/v2/transcript/{made['id']}").json())["status"] != "completed":
        assert got["status"] in ("queued", "processing") and time.monotonic() < deadline, got
        time.sleep(0.2)
    assert got["words"] and all(2500 <= w["start"] <= w["end"] <= 9000 for w in got["words"])
    assert "country" in got["text"] and got["audio_duration"] in (6, 7)
    bad = client.post("/v2/transcript", json=body | {"audio_end_at": 1000})
    assert bad.status_code == 400 and "must come after its start" in bad.json()["error"]
