"""Real media through the real model: video, stereo split, telephony, containers, silence, music."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, music, resample, write_audio, write_streams
from transcriber.domain import ChannelMode, NoticeCode, TranscriptionOptions
from transcriber.evaluation.wer import corpus_wer
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow


def test_video_sample_transcribes(pipeline: Pipeline, eval_root: Path) -> None:
    row = eval_rows("video.jsonl")[0]
    seen = []
    t = pipeline.run(
        eval_root / row["path"], TranscriptionOptions(word_timestamps=True), on_progress=seen.append
    )
    assert t.language == "en"
    assert "example video" in t.text.lower()
    assert abs(t.duration - row["duration_s"]) < 0.5
    assert seen and seen[-1].fraction == pytest.approx(1.0)
    assert all(a.fraction <= b.fraction for a, b in itertools.pairwise(seen))
    words = [w for s in t.segments for w in s.words]
    assert words, "word timestamps were asked for"
    assert all(s.start <= w.start <= w.end <= s.end + 0.5 for s in t.segments for w in s.words)
    # Long digital silence in the clip must not come back as text.
    assert not [s for s in t.segments if 20.0 < s.start < 38.0]


def test_stereo_split_labels_each_channel(pipeline: Pipeline, eval_root: Path) -> None:
    path = eval_root / "unreferenced/faster_whisper_stereo_diarization.wav"
    t = pipeline.run(path, TranscriptionOptions(language="en", channels=ChannelMode.split))
    speakers = {s.speaker for s in t.segments}
    assert speakers == {"channel 1", "channel 2"}
    right = " ".join(s.text for s in t.segments if s.speaker == "channel 2").lower()
    assert "horizon" in right
    left = " ".join(s.text for s in t.segments if s.speaker == "channel 1").lower()
    assert "horizon" not in left
    # Each stage's time is its own: the second channel's decoding is not taken off twice.
    assert all(v >= 0 for v in t.timings.values()), t.timings
    assert sum(t.timings.values()) <= t.processing_time + 0.01, t.timings
    mixed = pipeline.run(path, TranscriptionOptions(language="en"))
    assert {s.speaker for s in mixed.segments} == {None}


def test_split_of_one_sound_on_both_channels_is_transcribed_once(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    """jfk.flac is stereo with the same sound on both channels: split, every word came
    out twice, under channel 1 and channel 2."""
    path = eval_root / "en/whisper/jfk.flac"
    t = pipeline.run(path, TranscriptionOptions(language="en", channels=ChannelMode.split))
    assert [n.code for n in t.notices] == [NoticeCode.one_sound]
    assert t.notices[0].values == {"channels": 2}
    assert {s.speaker for s in t.segments} == {"channel 1"}  # split's labels, one channel
    assert [sp.label for sp in t.speakers] == ["channel 1"]
    assert t.text.lower().count("fellow americans") == 1, t.text
    assert t.text.lower().count("your country") == 2, t.text
    # A mono file asked to be split is one channel too, and says nothing of it.
    mono = write_audio(tmp_path / "mono.wav", load(path))
    split = TranscriptionOptions(language="en", channels=ChannelMode.split)
    t = pipeline.run(mono, split)
    assert {s.speaker for s in t.segments} == {"channel 1"} and t.notices == ()


def test_split_channels_leave_out_each_others_echo(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    # A call: the operator's prompts on the left, the caller on the right, and each side
    # hearing the other 25 dB down (line echo). Transcribed channel by channel, the echo
    # came out as text too, every sentence twice (82% diarization error at -20 dB).
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"]
    operator = [r for r in rows if "asterisk_ru" in r["path"]][:3]
    caller = [r for r in rows if r["speaker"] in ("coqui_ru_1", "golos_1")]
    gap = np.zeros(SR // 2, np.float32)
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for turn in [operator[0], caller[0], operator[1], caller[1], operator[2]]:
        voice = load(eval_root / turn["path"])
        mine, other = (left, right) if turn in operator else (right, left)
        mine += [voice, gap]
        other += [np.zeros_like(voice), gap]
    a, b = np.concatenate(left), np.concatenate(right)
    echo = 10 ** (-25 / 20)
    path = write_audio(tmp_path / "call.wav", np.stack([a + echo * b, b + echo * a]),
                       layout="stereo")  # fmt: skip
    t = pipeline.run(path, TranscriptionOptions(language="ru", channels=ChannelMode.split))

    def said(label: str) -> str:
        return " ".join(s.text for s in t.segments if s.speaker == label)

    operator_text = " ".join(r["text"] for r in operator)
    caller_text = " ".join(r["text"] for r in caller)
    assert corpus_wer([(operator_text, said("channel 1"))], "ru") < 0.3
    assert corpus_wer([(caller_text, said("channel 2"))], "ru") < 0.5
    assert "оператор" not in said("channel 2").lower()
    assert "бедняга" not in said("channel 1").lower()
    assert [n.code for n in t.notices].count(NoticeCode.crosstalk) == 1
    assert [s.label for s in t.speakers] == ["channel 1", "channel 2"]


SR = 16000


def test_mulaw_telephony(pipeline: Pipeline, eval_root: Path, tmp_path: Path) -> None:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru" and r["sample_rate"] == 16000]
    pairs = []
    for i, row in enumerate(rows):
        audio = resample(load(eval_root / row["path"]), 8000)
        path = write_audio(tmp_path / f"call{i}.wav", audio, rate=8000, codec="pcm_mulaw")
        t = pipeline.run(path, TranscriptionOptions(language="ru"))
        pairs.append((row["text"], t.text))
    assert corpus_wer(pairs, "ru") < 0.35, pairs


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [
        (".mp3", "libmp3lame", 16000),
        (".ogg", "libopus", 48000),
        (".m4a", "aac", 44100),
        (".flac", "flac", 22050),
        (".webm", "libopus", 48000),
        (".mkv", "aac", 48000),
        (".mov", "aac", 44100),
        (".avi", "libmp3lame", 44100),
        (".wav", "pcm_s24le", 44100),
        # Phone recordings: A-law and IMA ADPCM (PBX voicemail); AMR is a fixture below.
        (".wav", "pcm_alaw", 8000),
        (".wav", "adpcm_ima_wav", 8000),
        (".ac3", "ac3", 48000),
    ],
)
def test_containers(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path, suffix: str, codec: str, rate: int
) -> None:
    audio = resample(load(eval_root / "en/whisper/jfk.flac"), rate)
    path = write_audio(tmp_path / f"jfk{suffix}", audio, rate=rate, codec=codec)
    t = pipeline.run(path, TranscriptionOptions(language="en"))
    ref = "And so my fellow Americans, ask not what your country can do for you"
    assert corpus_wer([(ref, " ".join(t.text.split()[:14]))], "en") < 0.2, t.text


def test_amr_call_recording(pipeline: Pipeline) -> None:
    """AMR-NB, what phone call recorders write. The file is committed, made once from the
    JFK clip at 8 kHz with opencore's encoder: PyAV 18.1.1's wheels no longer ship an AMR
    encoder (FFmpeg's own decoder reads it), so it cannot be made at test time."""
    fixture = Path(__file__).parent.parent / "fixtures" / "jfk_8k.amr"
    t = pipeline.run(fixture, TranscriptionOptions(language="en"))
    ref = "And so my fellow Americans, ask not what your country can do for you"
    assert corpus_wer([(ref, " ".join(t.text.split()[:14]))], "en") < 0.2, t.text
    assert 10.0 < t.duration < 12.0, t.duration


def test_silence_and_noise_give_no_text(pipeline: Pipeline, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    silence = np.zeros(16000 * 40, np.float32)
    noise = (rng.standard_normal(16000 * 40) * 0.05).astype(np.float32)
    t = np.arange(16000 * 40) / 16000
    chords = (0.2 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t)).astype(np.float32)
    for name, audio in [("silence", silence), ("noise", noise), ("tone", chords)]:
        path = write_audio(tmp_path / f"{name}.wav", audio)
        result = pipeline.run(path, TranscriptionOptions())
        assert result.segments == (), f"{name}: {result.text!r}"
        assert result.duration == pytest.approx(40.0, abs=0.1)


def test_music_gives_no_text_and_speech_around_it_survives(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    only_music = write_audio(tmp_path / "music.wav", music(60.0, seed=1))
    result = pipeline.run(only_music, TranscriptionOptions(language="ru"))
    assert result.segments == (), result.text

    ru = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:2]
    first, last = (load(eval_root / r["path"]) for r in ru)
    intro = music(40.0, seed=2)
    path = write_audio(tmp_path / "show.wav", np.concatenate([first, intro, last]))
    t = pipeline.run(path, TranscriptionOptions(language="ru"))
    music_from, music_to = len(first) / 16000, (len(first) + len(intro)) / 16000
    inside = [s for s in t.segments if s.start > music_from + 1 and s.end < music_to - 1]
    assert inside == [], inside
    reference = " ".join(r["text"] for r in ru)
    assert corpus_wer([(reference, t.text)], "ru") < 0.4, t.text


def test_speech_right_after_a_minute_of_music_is_heard_from_its_first_word(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    """Silero's state, carried through a minute of music, kept it from hearing the first
    seconds of the speech after it: "And so my fellow Americans, ask not" was lost."""
    jfk = load(eval_root / "en/whisper/jfk.flac")
    gap = np.zeros(2 * 16000, np.float32)
    path = write_audio(tmp_path / "intro.wav", np.concatenate([music(60.0, seed=4), gap, jfk]))
    t = pipeline.run(path, TranscriptionOptions(language="en", word_timestamps=True))
    assert "fellow americans" in t.text.lower(), t.text
    assert 61.5 <= t.segments[0].start <= 62.8, t.segments[0]  # JFK begins at 62.3 s
    assert t.segments[-1].end <= 73.1


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov"])
def test_first_audio_stream_and_container_start_offset(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path, suffix: str
) -> None:
    # Two audio streams (English first, Russian second), both starting 12.5 s into the
    # file's timeline, as in a cut from a longer recording.
    en = resample(load(eval_root / "en/whisper/jfk.flac"), 48000)
    ru = resample(load(eval_root / "ru/coqui_stt/ru.wav"), 48000)
    path = write_streams(tmp_path / f"two_tracks{suffix}", [en, ru], start=12.5)
    t = pipeline.run(path, TranscriptionOptions(word_timestamps=True))
    assert t.language == "en"
    assert "fellow americans" in t.text.lower()
    assert t.duration == pytest.approx(11.0, abs=0.3)  # the audio's length, not its end time
    assert t.segments[0].start >= 12.4
    assert t.segments[-1].end <= 12.5 + 11.2
    assert all(w.start >= 12.4 for s in t.segments for w in s.words)


def test_no_segment_or_word_spans_a_long_silence(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    # Two utterances three minutes apart share one window once the silence is cut out;
    # the text after the cut must be placed after the silence, not stretched across it.
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:2]
    first, second = (load(eval_root / r["path"]) for r in rows)
    quiet_from, quiet_to = len(first) / 16000, len(first) / 16000 + 180.0
    audio = np.concatenate([first, np.zeros(16000 * 180, np.float32), second])
    path = write_audio(tmp_path / "apart.wav", audio)
    t = pipeline.run(path, TranscriptionOptions(language="ru"))
    words = [w for s in t.segments for w in s.words]
    spans = [(s.start, s.end) for s in t.segments] + [(w.start, w.end) for w in words]
    assert spans and all(a <= b for a, b in spans)
    across = [(a, b) for a, b in spans if a < quiet_from + 1.0 and b > quiet_to - 1.0]
    assert not across, across
    assert any(a >= quiet_to - 1.0 for a, _ in spans)  # the second utterance is there
