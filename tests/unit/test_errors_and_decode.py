"""Every bad input gets its own error class and a message naming the file."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import write_audio, write_hollow_wav, write_silent_video
from transcriber import errors
from transcriber.domain import Notice, NoticeCode
from transcriber.media import probe, stream_audio
from transcriber.media.frames import Cancellation, SameSound


def test_bad_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "a.wav"
    empty.write_bytes(b"")
    text = tmp_path / "b.mp3"
    text.write_text("hello, I am not audio\n" * 100)
    mute = write_silent_video(tmp_path / "c.mp4")
    cases = [
        (tmp_path / "missing.wav", errors.FileMissingError),
        (empty, errors.EmptyFileError),
        (text, errors.NotMediaError),
        (mute, errors.NoAudioStreamError),
    ]
    for path, cls in cases:
        with pytest.raises(cls) as info:
            probe(path)
        assert str(path) in info.value.message
        assert isinstance(info.value, errors.InputError)


def _png(path: Path) -> Path:
    """A real 2x2 RGB PNG, written by hand: a picture renamed to look like audio."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def test_picture_and_soundless_audio_are_named(tmp_path: Path) -> None:
    picture = _png(tmp_path / "holiday.mp3")
    with pytest.raises(errors.NoAudioStreamError, match=r"an image \(png\), not audio or video"):
        probe(picture)
    # A valid WAV header with no samples after it: it opens, but there is nothing to hear.
    hollow = write_hollow_wav(tmp_path / "hollow.wav")
    assert probe(hollow).channels == 1
    with pytest.raises(errors.EmptyFileError, match="0 samples") as info:
        list(stream_audio(hollow))
    assert str(hollow) in info.value.message


def test_truncated_wav_is_reported(tmp_path: Path) -> None:
    audio = (np.sin(np.arange(16000 * 6) / 10) * 0.3).astype(np.float32)
    whole = write_audio(tmp_path / "w.wav", audio).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(errors.TruncatedMediaError, match="truncated"):
        for _ in stream_audio(cut):
            pass
    # Short by one sample, or by a quarter second: the rest is all there, as other
    # containers are allowed (max(1 s, 5%)); it was refused whole.
    for missing in (2, 8000):
        short = tmp_path / f"short{missing}.wav"
        short.write_bytes(whole[:-missing])
        seconds = sum(len(c) for c in stream_audio(short)) / 16000
        assert abs(seconds - (6 - missing / 32000)) < 0.01, (missing, seconds)


def test_an_ogg_chain_that_changes_format_keeps_its_first_part(tmp_path: Path) -> None:
    # `cat a.opus b.opus` where b is stereo (a radio dump, a talk then music): ffmpeg
    # cannot follow the change. The part before it is kept, with a notice saying where
    # the rest was left unread; it was refused whole as "damaged or truncated".
    t = np.arange(48000 * 4) / 48000
    mono = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    first = write_audio(tmp_path / "a.opus", mono, rate=48000, codec="libopus", fmt="ogg")
    second = write_audio(tmp_path / "b.opus", np.stack([mono, mono]), rate=48000,
                         codec="libopus", layout="stereo", fmt="ogg")  # fmt: skip
    chained = tmp_path / "chained.opus"
    chained.write_bytes(first.read_bytes() + second.read_bytes())
    notices: list[Notice] = []
    seconds = sum(len(c) for c in stream_audio(chained, notices=notices)) / 16000
    assert 3.5 < seconds < 4.5, seconds
    (notice,) = [n for n in notices if n.code == NoticeCode.format_change]
    assert "changes format at 4.0 s" in notice.message and notice.values["at"] == 4.0


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def test_an_opus_pre_skip_is_not_missing_audio(tmp_path: Path) -> None:
    # RFC 7845 allows a pre-skip up to 65535 samples (1.4 s), which the granules count
    # but nobody hears: an 11 s file was refused as truncated ("only 9.6 s").
    audio = (np.sin(np.arange(48000 * 11) / 30) * 0.3).astype(np.float32)
    data = bytearray(write_audio(tmp_path / "a.opus", audio, rate=48000, codec="libopus",
                                 fmt="ogg").read_bytes())  # fmt: skip
    at = data.find(b"OpusHead")
    data[at + 10 : at + 12] = struct.pack("<H", 65535)
    end = 27 + data[26] + sum(data[27 : 27 + data[26]])  # the first page, which holds it
    data[22:26] = bytes(4)
    data[22:26] = struct.pack("<I", _ogg_crc(bytes(data[:end])))
    skipped = tmp_path / "skipped.opus"
    skipped.write_bytes(bytes(data))
    assert abs((probe(skipped).duration or 0) - (11 - 65535 / 48000)) < 0.05
    seconds = sum(len(c) for c in stream_audio(skipped)) / 16000
    assert 9.5 < seconds < 9.8, seconds


@pytest.mark.parametrize(("rate", "layout"), [(8000, "mono"), (22050, "stereo"), (44100, "mono")])
def test_truncated_mp3_with_a_frame_count_is_reported(
    tmp_path: Path, rate: int, layout: str
) -> None:
    # LAME and ffmpeg write a frame count (an Info header) into an mp3's first frame, so
    # its length is known, and a file cut short can be told from a short file.
    t = np.arange(rate * 20) / rate
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if layout == "stereo":
        audio = np.stack([audio, audio])
    path = write_audio(tmp_path / "w.mp3", audio, rate=rate, codec="libmp3lame", layout=layout)
    info = probe(path)
    assert info.exact and abs((info.duration or 0) - 20.0) < 0.2
    assert abs(sum(len(c) for c in stream_audio(path)) / 16000 - 20.0) < 0.2
    whole = path.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    with pytest.raises(errors.TruncatedMediaError, match=r"promises 20\.0 s") as e:
        for _ in stream_audio(cut):
            pass
    assert str(cut) in e.value.message
    # Without a frame count, an mp3's length is an estimate: a short file is not called cut.
    plain = tmp_path / "plain.mp3"
    bare = _without_frame_count(whole)
    plain.write_bytes(bare[: len(bare) * 6 // 10])
    assert not probe(plain).exact
    assert sum(len(c) for c in stream_audio(plain)) > 0


def _without_frame_count(mp3: bytes) -> bytes:
    """The mp3 with its Info header's flags cleared: it no longer states its frame count."""
    at = mp3.index(b"Info")
    return mp3[: at + 4] + b"\x00\x00\x00\x00" + mp3[at + 8 :]


def test_decode_resamples_and_selects_channel(tmp_path: Path) -> None:
    t = np.arange(44100 * 2) / 44100
    left = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    right = np.zeros_like(left)
    path = write_audio(tmp_path / "s.wav", np.stack([left, right]), rate=44100, layout="stereo")
    info = probe(path)
    assert (info.channels, info.sample_rate) == (2, 44100)
    mono = np.concatenate(list(stream_audio(path)))
    ch0 = np.concatenate(list(stream_audio(path, channel=0)))
    ch1 = np.concatenate(list(stream_audio(path, channel=1)))
    assert abs(len(mono) - 32000) < 50 and mono.dtype == np.float32
    assert np.abs(ch1).max() < 1e-3 < np.abs(ch0).max()
    with pytest.raises(errors.NoAudioStreamError):
        list(stream_audio(path, channel=2))


def test_cancelling_channels_are_told_from_ordinary_stereo() -> None:
    rng = np.random.default_rng(3)
    left = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)

    def verdict(right: np.ndarray, scale: float = 1.0) -> int | None:
        check = Cancellation()
        both = np.stack([left, right], axis=1) * scale
        for block in np.array_split(both, 30):
            check.feed(block.mean(axis=1), block, 16000)
        return check.channel()

    assert verdict(-left) == 0 and verdict(-0.95 * left) == 0  # 40 / 26 dB quieter mixed
    assert verdict(-0.5 * left) is None  # 6 dB: a mix, not a fault
    assert verdict(left) is None and verdict(np.zeros_like(left)) is None
    assert verdict((0.1 * rng.standard_normal(len(left))).astype(np.float32)) is None
    assert verdict(-left, scale=1e-4) is None  # nothing audible to judge by
    check = Cancellation()
    check.feed(np.zeros(16000, np.float32), np.stack([left[:16000], -left[:16000]], 1), 16000)
    assert not check.settled and check.audible == pytest.approx(1.0)
    # A recorder's 16 channels, two voices on two of them and the rest silent: mixed,
    # each is 24 dB down, which is no cancellation (it dropped the second voice).
    voice = (0.1 * rng.standard_normal(len(left))).astype(np.float32)
    for talking in ([2, 14], [5]):
        many = np.zeros((len(left), 16), np.float32)
        for ch, sound in zip(talking, (left, voice), strict=False):
            many[:, ch] = sound
        check = Cancellation()
        for block in np.array_split(many, 30):
            check.feed(block.mean(axis=1), block, 16000)
        assert check.channel() is None, talking
    many = np.zeros((len(left), 12), np.float32)
    many[:, 3], many[:, 7] = left, -left  # two of twelve wired in opposite phase
    check = Cancellation()
    for block in np.array_split(many, 30):
        check.feed(block.mean(axis=1), block, 16000)
    assert check.channel() == 3


def test_one_sound_on_every_channel_is_told_from_two_sides() -> None:
    rng = np.random.default_rng(5)
    left = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    other = (0.1 * rng.standard_normal(len(left))).astype(np.float32)

    def same(*rest: np.ndarray, scale: float = 1.0) -> bool:
        check = SameSound()
        both = np.stack([left, *rest], axis=1) * scale
        for block in np.array_split(both, 30):
            check.feed(block, 16000)
        return check.same()

    # The same signal, louder or quieter, inverted, or on three channels: one sound.
    assert same(left) and same(0.3 * left) and same(-left) and same(left, 0.5 * left)
    assert same(left + 0.05 * other)  # a little noise of its own (-26 dB) on one side
    # A call's two sides, each hearing the other's echo 20 dB down: two sounds.
    assert not same(other + 0.1 * left)
    assert not same(other) and not same(left, other)  # one channel of three differs
    assert not same(np.zeros_like(left))  # a silent side is not the same sound
    assert not same(left, scale=1e-4)  # nothing audible to judge by
    check = SameSound()
    check.feed(np.stack([left[:16000], left[:16000]], 1), 16000)
    assert not check.settled and check.audible == pytest.approx(1.0)


def test_the_web_page_words_every_error_code_in_both_languages() -> None:
    """Each error code a client can get has a sentence on the web page, in Russian and
    English (the page shows it instead of the server's English detail)."""
    import json
    from importlib import import_module

    import transcriber

    import_module("transcriber.api.app")  # every route's own errors, the live ones too

    def tree(cls: type[errors.TranscriberError]) -> list[type[errors.TranscriberError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in tree(sub))]

    codes = {cls.code for cls in tree(errors.TranscriberError)}
    assert {"quota_exceeded", "too_many_sessions", "bad_message"} <= codes
    # ...and the codes the HTTP mapping answers by itself (a full disk, a database down).
    package = Path(transcriber.__file__).parent
    mapping = (package / "api" / "errors.py").read_text("utf-8")
    answered = set(re.findall(r'error_response\(\s*\d+,\s*"(\w+)"', mapping))
    assert "insufficient_storage" in answered
    codes |= answered
    i18n = package / "web" / "static" / "i18n"
    for lang in ("en", "ru"):
        words = json.loads((i18n / f"{lang}.json").read_text())
        missing = sorted(c for c in codes if f"error.{c}" not in words)
        assert not missing, (lang, missing)


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        ("truncated_media", errors.TruncatedMediaError, 415),
        ("model_not_found", errors.ModelNotFoundError, 422),
        ("fetch_failed", errors.FetchError, 400),
        ("internal_error", errors.TranscriptionFailedError, 422),  # not the input's fault
        ("model_unavailable", errors.TranscriptionFailedError, 422),
        ("no_such_code", errors.TranscriptionFailedError, 422),
        (None, errors.TranscriptionFailedError, 422),
    ],
)
def test_a_failed_tasks_code_is_answered_as_its_own_error(
    code: str | None, kind: type[errors.TranscriberError], status: int
) -> None:
    error = errors.failed_task_error(code, "a.wav: why")
    assert type(error) is kind and error.http_status == status
    assert error.message == "a.wav: why"
