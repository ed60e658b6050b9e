"""Diarization on real recordings with the real models: CAM++ against its reference, DER
and speaker counts on the dev and meeting sets, one speaker where there is one, and two
at once where two voices are mixed. Run with -s (or -rA) to see the numbers."""

from __future__ import annotations

import json
import os
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import EVAL, eval_dir, eval_rows
from transcriber.config import available_cores
from transcriber.diarization import der, diarize, fbank, parse_rttm, speaker_seconds
from transcriber.diarization.campplus import (
    SpeakerEncoder,
    cached_model,
    default_encoder,
    trunk_frames,
)
from transcriber.diarization.lanes import lane_layout
from transcriber.diarization.segmentation import CHUNK, Segmenter, default_segmenter
from transcriber.diarization.timeline import Turn
from transcriber.errors import ModelError
from transcriber.media.decode import stream_audio
from transcriber.media.vad import Region, SpeechDetector
from transcriber.models.weights import SPEAKER_FILES

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parents[1] / "fixtures" / "campplus_reference.json"
SCORED_S = 30.0  # every dev and meeting file is scored on 0-30 s (their UEM)
COUNTED_S = 3.0  # a reference speaker counts if they talk at least this long
# The goals, on the files of ../shared/eval.
MEETING_MEAN_DER = 0.25
MEETING_MIN_SPEECH_S = 10.0
EXACT_COUNTS = 4
# Per dev file: the goal of 15% DER, and the speakers found. On dev00 and dev01 the
# segmentation model keeps the two men as one local speaker; refine.split_voices parts
# them (before it: 22.9% and 37.1%, one speaker on dev01).
DEV = {"sample": (0.15, 2), "dev00": (0.15, 2), "dev01": (0.15, 2)}


@pytest.fixture(scope="module", autouse=True)
def models(tmp_path_factory: pytest.TempPathFactory) -> None:
    try:
        default_segmenter()
        default_encoder(tmp_path_factory.mktemp("campplus"))
    except ModelError:
        lines = " && ".join(w.install for w in SPEAKER_FILES)
        if os.environ.get("CI"):
            pytest.fail(f"speaker-diarization weights are missing in CI: {lines}")
        pytest.skip(f"speaker-diarization weights are not installed ({lines})")


def decode(path: Path) -> np.ndarray:
    return np.concatenate(list(stream_audio(path)))


def speech_regions(path: Path) -> list[Region]:
    detector = SpeechDetector()
    regions: list[Region] = []
    for chunk in stream_audio(path):
        regions += detector.feed(chunk)
    return regions + detector.finish()


def test_campplus_matches_its_reference_implementation(eval_root: Path) -> None:
    """Embeddings of 3D-Speaker's own code (torch) and kaldi-native-fbank, computed once."""
    reference = json.loads(FIXTURE.read_text())
    encoder = default_encoder()
    for clip in reference["clips"]:
        audio = decode(eval_root / clip["path"])[clip["start"] : clip["end"]]
        feats = fbank.fbank(audio)
        np.testing.assert_allclose(feats[:8], clip["fbank_head"], atol=0.01)
        weights = np.ones((1, 1, trunk_frames(len(feats))), np.float32)
        got = encoder.pooled(fbank.normalise(feats)[None], weights)[0, 0]
        want = np.array(clip["embedding"])
        cos = float(got @ want / np.linalg.norm(got) / np.linalg.norm(want))
        print(f"\n{clip['name']}: cosine to the reference {cos:.7f}")
        assert cos > 0.99999
        np.testing.assert_allclose(got, want, atol=2e-3 * np.abs(want).max())


def test_two_lanes_give_what_one_session_gives(eval_root: Path) -> None:
    """A batch split between two one-thread sessions, and independent calls shared out
    between them largest first, come back complete and in order (diarization/lanes.py)."""
    reference = json.loads(FIXTURE.read_text())
    clip = reference["clips"][0]
    audio = decode(eval_root / clip["path"])
    audio = np.pad(audio, (0, max(0, CHUNK + 32_000 - len(audio))))
    chunks = np.stack([audio[i * 16_000 : i * 16_000 + CHUNK] for i in range(3)])
    one, two = Segmenter(lanes=1), Segmenter(lanes=2)
    assert (
        len(one.lanes.sessions) == 1
        and len(two.lanes.sessions) == lane_layout(available_cores())[0]
    )
    # 3 chunks: split 2 + 1. Another batch size may round differently in the last bit,
    # which can flip a frame whose two best classes tie; nothing more.
    assert (two(chunks) == one(chunks)).mean() > 0.995

    feats = fbank.normalise(fbank.fbank(audio[: 16_000 * 6]))
    calls = []
    for seconds in (1.5, 4.0, 2.5, 4.0):  # different sizes: run out of order
        n = int(seconds * 100)
        weights = np.ones((2, 1, trunk_frames(n)), np.float32)
        calls.append((np.stack([feats[:n], feats[-n:]]), weights))
    serial = SpeakerEncoder(cached_model(None), lanes=1)
    shared = SpeakerEncoder(cached_model(None), lanes=2)
    got = shared.pooled_all(calls)
    assert [g.shape for g in got] == [(2, 1, 192)] * 4
    for (f, w), g in zip(calls, got, strict=True):
        np.testing.assert_allclose(g, serial.pooled(f, w), rtol=1e-4, atol=1e-4)
    assert not np.allclose(got[0], got[1])  # each call kept its own output


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_lanes_still_work_in_a_forked_child() -> None:
    """A worker process forked after the models were used (a prefork pool) must not
    wait forever on helper threads that only exist in its parent."""
    segmenter = Segmenter(lanes=2)
    chunks = np.zeros((2, CHUNK), np.float32)
    segmenter(chunks)  # the helper threads now exist, in this process
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the split batch comes back
        ok = False
        try:
            ok = segmenter(chunks).shape == (2, 589, 3)
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the lanes' helper threads")
    assert os.waitstatus_to_exitcode(status) == 0


def _rows() -> list[dict[str, Any]]:
    found = [EVAL / n for n in ("diarization.jsonl", "meetings.jsonl")]
    if not all(p.is_file() for p in found):
        return []
    return [r for n in ("diarization.jsonl", "meetings.jsonl") for r in eval_rows(n)]


def _dvectors_installed() -> bool:
    from transcriber.diarization.encoder import weights_path

    try:
        weights_path()
    except ModelError:
        return False
    return True


@pytest.fixture(scope="module")
def scores() -> list[dict[str, Any]]:
    """Both methods on every dev and meeting file, in the same run."""
    eval_root = eval_dir()
    out = []
    for row in _rows():
        path = eval_root / str(row["path"])
        regions = speech_regions(path)
        t = time.perf_counter()
        turns = diarize(path, regions)
        spent = time.perf_counter() - t
        reference = parse_rttm((eval_root / str(row["rttm"])).read_text())
        result = der(reference, turns, collar=0.25, scored=(0.0, SCORED_S))
        old = None
        if _dvectors_installed():
            before = diarize(path, regions, method="dvector")
            old = (der(reference, before, collar=0.25, scored=(0.0, SCORED_S)), before)
        cut = [
            Turn(r.start, min(r.end, SCORED_S), r.speaker) for r in reference if r.start < SCORED_S
        ]
        talk = speaker_seconds(cut)
        out.append(
            {
                "file": path.stem,
                "result": result,
                "found": len({t.speaker for t in turns}),
                "old": old,
                "counted": sum(1 for s in talk.values() if s >= COUNTED_S),
                "speech": sum(talk.values()),
                "seconds": spent,
            }
        )
    print(
        "\nfile     DER     missed  f.alarm confusion  found/talking>=3s"
        "  | dvector: DER    missed  f.alarm confusion  found"
    )
    for s in out:
        m, f, c = s["result"].rates
        line = (
            f"{s['file']:<8} {s['result'].der:6.1%}  {m:6.1%}  {f:6.1%}  {c:6.1%}"
            f"     {s['found']} / {s['counted']}         |"
        )
        if s["old"] is not None:
            r, turns = s["old"]
            om, of, oc = r.rates
            found = len({t.speaker for t in turns})
            line += f"  {r.der:6.1%}  {om:6.1%}  {of:6.1%}  {oc:6.1%}    {found}"
        print(line + f"   ({s['speech']:.1f} s of speech, {s['seconds']:.1f} s to diarize)")
    return out


def test_dev_files_der(scores: list[dict[str, Any]]) -> None:
    dev = [s for s in scores if s["file"] in DEV]
    if not dev:
        pytest.skip("diarization.jsonl is absent")
    for s in dev:
        bar, speakers = DEV[s["file"]]
        assert s["result"].der <= bar, s["file"]
        assert speakers is None or s["found"] == speakers, s["file"]


def test_the_pyannote_method_beats_the_dvector_option_on_the_dev_files(
    scores: list[dict[str, Any]],
) -> None:
    """The d-vector option (TRANSCRIBER_DIARIZATION_METHOD=dvector) used to win on dev01,
    two similar voices that one local speaker held; the window refinement parts them."""
    dev = [s for s in scores if s["file"] in DEV and s["old"] is not None]
    if not dev:
        pytest.skip("the dev files or resemblyzer's weights are absent")
    for s in dev:
        assert s["result"].der <= s["old"][0].der, s["file"]


def test_meetings_der_and_speaker_counts(scores: list[dict[str, Any]]) -> None:
    meetings = [s for s in scores if s["file"] not in DEV]
    if not meetings:
        pytest.skip("meetings.jsonl is absent")
    scored = [s for s in meetings if s["speech"] >= MEETING_MIN_SPEECH_S]
    mean = float(np.mean([s["result"].der for s in scored]))
    within = sum(abs(s["found"] - s["counted"]) <= 1 for s in scored)
    exact = sum(s["found"] == s["counted"] for s in scored)
    print(
        f"\nmeetings with >= 10 s of speech: {len(scored)}; mean DER {mean:.1%};"
        f" count within 1: {within}, exact: {exact}"
    )
    assert len(scored) == 7
    assert mean <= MEETING_MEAN_DER
    assert within == len(scored)
    assert exact >= EXACT_COUNTS


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
    assert diarize(path, []) == []


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def _overlap(turns: list[Turn], speaker: str, a: float, b: float) -> float:
    return sum(max(0.0, min(b, t.end) - max(a, t.start)) for t in turns if t.speaker == speaker)


def test_two_voices_mixed_are_two_speakers_at_once(eval_root: Path, tmp_path: Path) -> None:
    """JFK alone for 7 s, JFK and an LJ Speech reader together for 4 s, then the reader
    alone: both must be found talking in the mixed span."""
    jfk = decode(eval_root / "en/whisper/jfk.flac")
    reader = np.concatenate(
        [decode(eval_root / f"en/coqui_tts_ljspeech/LJ001-000{i}.wav") for i in (1, 3)]
    )
    rate, mix_from, mix_to = 16000, 7.0, 11.0
    a, b = int(mix_from * rate), int(mix_to * rate)
    audio = np.zeros(a + len(reader), np.float32)
    audio[: len(jfk[:b])] += jfk[:b]
    audio[a:] += reader
    path = tmp_path / "mixed.wav"
    _write_wav(path, audio * 0.7)
    turns = diarize(path, speech_regions(path))
    speakers = sorted({t.speaker for t in turns})
    assert speakers == ["A", "B"], turns
    inside = {s: _overlap(turns, s, mix_from + 0.5, mix_to - 0.5) for s in speakers}
    print(f"\nmixed 7-11 s: seconds each speaker is heard in 7.5-10.5 s: {inside}")
    assert all(v >= 1.0 for v in inside.values())
    # And at the same moments, not only in turn.
    both = sum(
        max(0.0, min(x.end, y.end, mix_to) - max(x.start, y.start, mix_from))
        for x in turns
        if x.speaker == "A"
        for y in turns
        if y.speaker == "B"
    )
    assert both >= 1.0
    # Before and after the mix, one voice each.
    assert _overlap(turns, "B", 0.5, mix_from - 1.0) < 0.5
    assert _overlap(turns, "A", mix_to + 1.0, len(audio) / rate) < 0.5


def test_chunks_do_not_depend_on_how_the_stream_is_cut(eval_root: Path) -> None:
    """The same analysis whatever the decoder's chunk sizes, with the audio held bounded
    (one 10 s chunk plus what arrives) and only bits and embeddings kept per chunk."""
    from transcriber.diarization.local import LocalSpeakers

    audio = np.concatenate(
        [decode(eval_root / "en/whisper/jfk.flac"), decode(eval_root / "ru/coqui_stt/ru.wav")]
    )

    def run(size: int) -> list[Any]:
        local = LocalSpeakers(default_segmenter(), default_encoder(), step_frames=148)
        for i in range(0, len(audio), size):
            local.feed(audio[i : i + size])
            assert len(local._buf) <= 160_000 + size
        return local.finish()

    a, b = run(16_000), run(7_777)
    assert [c.first_frame for c in a] == [c.first_frame for c in b]
    for x, y in zip(a, b, strict=True):
        assert (x.active == y.active).all()
        np.testing.assert_allclose(x.embeddings, y.embeddings, atol=1e-4)
        np.testing.assert_allclose(x.windows, y.windows, atol=2e-3)
        assert (x.window_speaker == y.window_speaker).all()
        assert (x.window_frame == y.window_frame).all()
        held = [x.active, x.embeddings, x.clean_s, x.windows, x.window_speaker, x.window_frame]
        # Bits, three embeddings and about 20 float16 windows (10 s of clean speech).
        assert sum(a.nbytes for a in held) + x.window_s.nbytes < 15_000


def test_the_speaker_count_does_not_grow_with_the_length_of_the_file(
    eval_root: Path, tmp_path: Path
) -> None:
    """dev00 and dev01 (the same two men) joined three times over: 3 minutes, so the long
    file's 10 s chunk step. Parting voices once kept every small group of odd windows as
    a speaker of its own, and found 7 speakers here (DER 34.7%)."""
    rows = {Path(str(r["path"])).stem: r for r in eval_rows("diarization.jsonl")}
    parts, reference, offset = [], [], 0.0
    for name in ("dev00", "dev01") * 3:
        row = rows[name]
        audio = decode(eval_root / str(row["path"]))[: int(SCORED_S * 16000)]
        for t in parse_rttm((eval_root / str(row["rttm"])).read_text()):
            if t.start < SCORED_S:
                reference.append(Turn(offset + t.start, offset + min(t.end, SCORED_S), t.speaker))
        parts.append(audio)
        offset += len(audio) / 16000
    path = tmp_path / "dev_x3.wav"
    _write_wav(path, np.concatenate(parts))
    turns = diarize(path, [Region(0, 1)])
    found = {t.speaker for t in turns}
    score = der(reference, turns)
    print(f"\n3 x (dev00 + dev01), {offset:.0f} s: DER {score.der:.1%}, {len(found)} speakers")
    assert len(found) in (2, 3)
    assert score.der < 0.25


def test_one_voice_at_two_levels_keeps_all_its_speech(eval_root: Path, tmp_path: Path) -> None:
    """One voice, its sentences alternately 30 dB apart, for over 2 minutes (the 10 s
    chunk step). The segmentation model hears the loud and the quiet voice as two local
    speakers; with one global speaker the one-to-one assignment left the second out, and
    its speech fell out of the turns."""
    clips = [r for r in eval_rows("asr.jsonl") if "asterisk_ru" in str(r["path"])]
    parts, total = [], 0.0
    for i, row in enumerate(clips):
        voice = decode(eval_root / str(row["path"]))
        level = 10 ** ((-14 if i % 2 == 0 else -44) / 20)
        parts += [voice * level / float(np.sqrt(np.mean(voice**2))), np.zeros(9600, np.float32)]
        total += len(voice) / 16000 + 0.6
        if total > 125:
            break
    path = tmp_path / "one_voice_two_levels.wav"
    _write_wav(path, np.concatenate(parts))
    regions = speech_regions(path)
    turns = diarize(path, regions)
    spans = [(r.start / 16000, r.end / 16000) for r in regions]
    speech = sum(b - a for a, b in spans)
    covered = sum(_overlap(turns, "A", a, b) for a, b in spans)
    print(f"\none voice at two levels, {total:.0f} s: {covered / speech:.0%} of speech in turns")
    assert {t.speaker for t in turns} == {"A"}
    assert covered > 0.9 * speech
