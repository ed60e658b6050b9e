"""Live transcription's parts that need no model: audio input, LocalAgreement, the VAD's
view of open speech, prompts, the client's URLs and the saved recording."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load
from transcriber.domain import Word
from transcriber.errors import NotAudioError, OptionError
from transcriber.live.agreement import LocalAgreement
from transcriber.live.audio import AudioFormat, AudioInput, check_frame
from transcriber.live.client import frames, live_url
from transcriber.live.decoder import CONTEXT_CHARS, prompt_for
from transcriber.live.recording import Recording
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import FRAME, SpeechDetector, VadParams


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [
        Word(start + i * step, start + i * step + 0.4, " " + w) for i, w in enumerate(text.split())
    ]


# --- audio in ------------------------------------------------------------------------
@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_bytes_decode_as_ffmpeg_decodes_them(law: str) -> None:
    every_byte = bytes(range(256))
    container = av.open(io.BytesIO(every_byte), format=law, options={"sample_rate": "8000"})
    expected = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    got = AudioInput(AudioFormat(law, 8000)).pcm16(every_byte)
    assert np.array_equal(got, expected.astype(np.int16))


def test_a_sample_split_across_frames_is_carried_over() -> None:
    samples = np.array([1000, -2000, 30000, -32768, 7], np.int16)
    raw = samples.astype("<i2").tobytes()
    audio = AudioInput(AudioFormat("pcm_s16le", 16000))
    parts = [audio.pcm16(raw[:3]), audio.pcm16(raw[3:4]), audio.pcm16(raw[4:])]
    assert [len(p) for p in parts] == [1, 1, 3]
    assert np.array_equal(np.concatenate(parts), samples)


@pytest.mark.parametrize("rate", [8000, 24000, 48000])
def test_streamed_resampling_keeps_the_length_and_the_signal(rate: int) -> None:
    t = np.arange(rate * 2) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    audio = AudioInput(AudioFormat("pcm_s16le", rate))
    step = rate // 50  # 20 ms frames, as a browser sends them
    parts = [audio.to_model_rate(tone[i : i + step]) for i in range(0, len(tone), step)]
    out = np.concatenate([*parts, audio.flush()])
    assert abs(len(out) - 2 * SAMPLE_RATE) <= 32
    middle = out[SAMPLE_RATE // 2 : SAMPLE_RATE]
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / SAMPLE_RATE) * 12000 / 32768
    lag = int(np.argmax(np.correlate(middle, expected[SAMPLE_RATE // 2 - 40 : SAMPLE_RATE + 40])))
    best = expected[SAMPLE_RATE // 2 - 40 + lag : SAMPLE_RATE - 40 + lag]
    assert np.max(np.abs(middle - best)) < 0.01


def test_unsupported_formats_are_named() -> None:
    with pytest.raises(OptionError, match="sample_rate 44100 is not supported; use one of 8000"):
        AudioFormat("pcm_s16le", 44100)
    with pytest.raises(OptionError, match="encoding 'opus' is not supported"):
        AudioFormat("opus", 16000)


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a WAV file"),
        (b"OggS\x00\x02", "an Ogg file"),
        (b"ID3\x04\x00\x00", "an MP3 file"),
        (b'{"type": "stop"}', "JSON text"),
    ],
)
def test_files_and_text_are_not_taken_for_samples(head: bytes, named: str) -> None:
    with pytest.raises(NotAudioError, match=f"holds {named}.*pcm_s16le at 16000 Hz"):
        check_frame(head + bytes(100) if head[:1] != b"{" else head, AudioFormat())


def test_samples_that_start_like_text_are_still_samples() -> None:
    check_frame(b"{" + bytes(range(200)) + b"}", AudioFormat())  # not JSON
    check_frame(b"ID3" + bytes(100), AudioFormat())  # no ID3 version after it


def test_recording_is_a_playable_wav_even_when_not_closed_cleanly() -> None:
    rec = Recording(24000)
    try:
        rec.write(np.arange(-1000, 1000, dtype=np.int16))
        rec.write(np.zeros(0, np.int16))
        rec.close()
        rec.close()  # twice is harmless (a vanished client, then the end)
        with wave.open(str(rec.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
            assert w.getnframes() == 2000
        assert rec.seconds == pytest.approx(2000 / 24000)
    finally:
        rec.remove()
    assert not rec.path.exists()


# --- LocalAgreement ----------------------------------------------------------------------
def test_words_commit_once_two_decodes_agree() -> None:
    la = LocalAgreement()
    assert la.update(words("добрый")) == []  # nothing to agree with yet
    assert [w.word for w in la.update(words("добрый день"))] == [" добрый"]
    assert [w.word for w in la.tentative] == [" день"]
    # Punctuation and case added later do not hold a word back.
    new = la.update(words("Добрый день, как дела"))
    assert [w.word for w in new] == [" день,"]
    assert [w.word for w in la.committed] == [" добрый", " день,"]


def test_a_changed_guess_is_not_committed_and_committed_words_stay() -> None:
    la = LocalAgreement()
    la.update(words("ask not what"))
    la.update(words("ask not what your"))  # commits "ask not what"
    new = la.update(words("ask knot what you are"))  # the decoder wavers on old words
    assert [w.word for w in la.committed] == [" ask", " not", " what"]
    assert new == [] and [w.word for w in la.tentative] == [" you", " are"]


def test_a_committed_word_heard_again_at_the_seam_is_not_doubled() -> None:
    la = LocalAgreement()
    la.update(words("one two three"))
    la.update(words("one two three four"))
    # The word "three" comes back with an earlier start than it was committed with.
    shifted = [*words("one two", 0.0), Word(0.95, 1.4, " three"), *words("four five", 1.5)]
    la.update(shifted)
    assert [w.word for w in la.committed] == [" one", " two", " three", " four"]
    assert [w.word for w in la.tentative] == [" five"]


def test_cut_hands_over_committed_words() -> None:
    la = LocalAgreement()
    la.update(words("a b c d"))
    la.update(words("a b c d"))
    taken = la.cut(2)
    assert [w.word for w in taken] == [" a", " b"]
    assert [w.word for w in la.committed] == [" c", " d"]
    la.reset()
    assert la.committed == [] and la.tentative == []


# --- the VAD's view of speech still going on ---------------------------------------------
def test_pending_region_is_the_region_that_closes(eval_root: object) -> None:
    row = next(r for r in eval_rows("asr.jsonl") if r["path"].endswith("ru.wav"))
    speech = load(eval_root / row["path"])  # type: ignore[operator]
    silence = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([silence, speech, silence])
    detector = SpeechDetector(VadParams(min_silence_ms=600, speech_pad_ms=300))
    assert detector.pending() is None
    last, closed_all, quiet_seen = None, [], 0
    for i in range(0, len(audio), FRAME):  # a frame at a time: the close is exact
        closed = detector.feed(audio[i : i + FRAME])
        for region in closed:
            assert last is not None and (region.start, region.end) == (last.start, last.end)
            closed_all.append(region)
        pending = detector.pending()
        if pending is not None:
            if last is not None and not closed:
                assert pending.start == last.start and pending.end >= last.end
            quiet_seen = max(quiet_seen, detector.quiet_frames)
        last = pending
    assert closed_all and detector.pending() is None
    assert 0.6 * SAMPLE_RATE < closed_all[0].start < 1.3 * SAMPLE_RATE  # speech after 1 s, padded
    assert quiet_seen * FRAME >= 0.3 * SAMPLE_RATE  # quiet was counted before each close


def test_quiet_frames_count_from_the_last_speech() -> None:
    detector = SpeechDetector(VadParams(min_silence_ms=2000))
    assert detector.quiet_frames == 0
    # A region is only open after speech; silence alone never opens one.
    detector.feed(np.zeros(20 * FRAME, np.float32))
    assert detector.pending() is None and detector.quiet_frames == 0


# --- prompts and URLs ---------------------------------------------------------------------
def test_prompt_puts_the_users_terms_before_the_recent_context() -> None:
    assert prompt_for(None, "") is None
    assert prompt_for("Kubernetes, Анна", "") == "Kubernetes, Анна"
    said = " ".join(f"слово{i}" for i in range(100))
    prompt = prompt_for("Анна", said)
    assert prompt is not None and prompt.startswith("Анна слово")
    context = prompt[len("Анна ") :]
    assert len(context) <= CONTEXT_CHARS and said.endswith(context)
    assert context.split()[0] in said.split()  # starts at a whole word


def test_live_urls() -> None:
    assert live_url("http://127.0.0.1:8086") == "ws://127.0.0.1:8086/ws/live"
    assert (
        live_url("https://asr.example.org/", token="k") == "wss://asr.example.org/ws/live?token=k"
    )
    assert live_url("ws://h:1/ws/live") == "ws://h:1/ws/live"
    chunks = frames(bytes(9000), 32000)
    assert [len(c) for c in chunks] == [3200, 3200, 2600]
