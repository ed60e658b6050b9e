"""Hostile and unusual media: a correct transcript, or one clear error that names the file.

Never a traceback, a crash of the process, a hang or memory that grows with the file.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import eval_rows
from tests.media_factory import (
    load,
    resample,
    write_audio,
    write_float_wav,
    write_raw_wav,
    write_silence,
    write_streams,
    write_timed,
    write_video_with_late_audio,
)
from tests.servers.receiver import Receiver
from transcriber import errors
from transcriber.domain import Clip, Notice, NoticeCode, TranscriptionOptions
from transcriber.evaluation.wer import corpus_wer
from transcriber.media import probe, stream_audio
from transcriber.pipeline import Pipeline

RU = "ru/coqui_stt/ru.wav"
RU_TEXT = "бедняга ребят на его месте должен быть я"
SR = 16000


def decoded(
    path: Path, channel: int | None = None, notices: list[Notice] | None = None
) -> np.ndarray:
    return np.concatenate(list(stream_audio(path, channel=channel, notices=notices)))


def tone(seconds: float, freq: float = 440.0, gain: float = 0.3, rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (gain * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --- samples no model was trained on: NaN, infinities, the wrong scale, a DC offset ---


def _nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[len(a) // 3 : len(a) // 3 + 50] = np.nan
    return a


def _inf(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[1000:1010], a[2000:2010] = np.inf, -np.inf
    return a


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "spoil"),
    [
        ("nan", _nan),
        ("inf", _inf),
        ("int16_scale", lambda a: a * 32767),  # float WAV written with 16-bit values
        ("dc_offset", lambda a: np.clip(a + 0.7, -1, 1)),
    ],
)
def test_broken_float_samples_still_transcribe(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path, name: str, spoil: object
) -> None:
    assert callable(spoil)
    path = write_float_wav(tmp_path / f"{name}.wav", spoil(load(eval_root / RU)))
    chunks = list(stream_audio(path))
    assert all(np.isfinite(c).all() and np.abs(c).max() <= 1.0 for c in chunks)
    t = pipeline.run(path, TranscriptionOptions(language="ru"))
    assert corpus_wer([(RU_TEXT, t.text)], "ru") < 0.4, t.text


# --- streams that change, break or jump ---


def test_damaged_packets_are_skipped_not_fatal(tmp_path: Path) -> None:
    audio = tone(6.0, rate=44100)
    whole = write_audio(tmp_path / "w.mp3", audio, rate=44100, codec="libmp3lame").read_bytes()
    bad = bytearray(whole)
    mid = len(bad) // 2
    bad[mid : mid + 200] = np.random.default_rng(0).integers(0, 256, 200, np.uint8).tobytes()
    scratched = tmp_path / "scratched.mp3"
    scratched.write_bytes(bytes(bad))
    said: list[Notice] = []
    assert 5.4 < len(decoded(scratched, notices=said)) / SR < 6.1  # a few frames lost
    (skipped,) = said  # and the transcript says so
    assert skipped.code is NoticeCode.damaged_audio and 1 <= int(skipped.values["skipped"]) < 10
    assert f"{skipped.values['skipped']} of {skipped.values['packets']} audio packets" in (
        skipped.message
    )
    clean: list[Notice] = []
    decoded(tmp_path / "w.mp3", notices=clean)
    assert clean == []
    # Many scratches in a minute: the header's length is not taken for a cut-off file,
    # the time lost with the packets skipped is allowed for.
    long = write_audio(tmp_path / "l.mp3", tone(60.0, rate=44100), rate=44100,
                       codec="libmp3lame").read_bytes()  # fmt: skip
    assert probe(tmp_path / "l.mp3").exact
    worn = bytearray(long)
    for at in np.linspace(5000, len(worn) - 5000, 30).astype(int):
        worn[at : at + 200] = np.random.default_rng(at).integers(0, 256, 200, np.uint8).tobytes()
    (tmp_path / "worn.mp3").write_bytes(bytes(worn))
    noted: list[Notice] = []
    assert 50 < len(decoded(tmp_path / "worn.mp3", notices=noted)) / SR < 60
    assert [n.code for n in noted] == [NoticeCode.damaged_audio]
    # Mostly garbage is not a scratch: it fails, naming the file.
    ruined = bytearray(whole)
    for at in range(1000, len(ruined) - 100, 400):
        ruined[at : at + 100] = bytes(100)
    (tmp_path / "ruined.mp3").write_bytes(bytes(ruined))
    with pytest.raises(errors.TruncatedMediaError, match="damaged") as info:
        decoded(tmp_path / "ruined.mp3")
    assert str(tmp_path / "ruined.mp3") in info.value.message


def test_audio_that_does_not_decode_is_named_in_words(tmp_path: Path) -> None:
    """A decoder's own error numbers reached the user as system errors: SBC frames whose
    bitpool is out of range as 'Interrupted system call', an AAC decoder fed mp2 frames
    as 'Error number -50531338 occurred'. The message names the codec, where decoding
    failed and what may have happened, and no meaningless reason."""
    garbled = tmp_path / "headset.sbc"
    garbled.write_bytes((b"\x9c\x31\xfd\x55" + bytes(510)) * 100)
    with pytest.raises(errors.NotMediaError) as failed:
        decoded(garbled)
    message = failed.value.message
    assert message.startswith(f"{garbled}: the SBC") and "could not be decoded" in message
    assert "may be damaged" in message and "system call" not in message
    # Two TS recordings joined (`cat`), the second in another codec on the same stream.
    speech = tone(6.0)
    first = write_audio(tmp_path / "a.ts", speech, codec="aac", fmt="mpegts").read_bytes()
    second = write_audio(tmp_path / "b.ts", speech, codec="mp2", fmt="mpegts").read_bytes()
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first + second)
    with pytest.raises(errors.TruncatedMediaError) as cut:
        decoded(joined)
    message = cut.value.message
    assert (
        message.startswith(f"{joined}: file is damaged: the AAC") and "Error number" not in message
    )
    assert re.search(r"from 6\.[0-2] s on", message), message  # the AAC's end: 6 s
    assert "another format was joined on there" in message


def test_mp3_files_joined_with_their_tags_are_not_damaged(tmp_path: Path) -> None:
    """`cat` of tagged mp3s (audiobook chapters): each brings an ID3 tag with its cover
    art. ffmpeg read a tag inside the file as frames that fail: a false damaged_audio
    notice, and for a picture of 500 KB the whole file was refused as damaged."""

    def tagged(name: str, audio: np.ndarray, art: int) -> bytes:
        path = write_audio(tmp_path / name, audio, rate=44100, codec="libmp3lame",
                           options={"id3v2_version": "0"})  # fmt: skip
        picture = np.random.default_rng(art).integers(0, 256, art, np.uint8).tobytes()
        frame = b"APIC" + len(picture).to_bytes(4, "big") + b"\0\0" + picture
        size = bytes((len(frame) >> s) & 0x7F for s in (21, 14, 7, 0))  # syncsafe
        return b"ID3\x03\0\0" + size + frame + path.read_bytes()

    for art in (20_000, 500_000):
        joined = tmp_path / f"book_{art}.mp3"
        joined.write_bytes(tagged("a.mp3", tone(3.0, rate=44100), art)
                           + tagged("b.mp3", tone(4.0, 880, rate=44100), art))  # fmt: skip
        said: list[Notice] = []
        audio = decoded(joined, notices=said)
        assert said == [], art
        assert abs(len(audio) / SR - 7.0) < 0.2, art
        loud = np.abs(audio) > 0.1
        assert loud[: 3 * SR].mean() > 0.5 and loud[4 * SR :].mean() > 0.5


@pytest.mark.parametrize(
    ("suffix", "codec", "fmt", "rate"),
    [
        (".mp3", "libmp3lame", None, 16000),
        (".aac", "aac", "adts", 16000),
        (".ac3", "ac3", "ac3", 48000),
    ],
)
def test_a_raw_stream_followed_by_preallocated_zeros_keeps_its_length(
    tmp_path: Path, eval_root: Path, suffix: str, codec: str, fmt: str | None, rate: int
) -> None:
    """A voice recorder or app that preallocates its file and stops early leaves the
    frames followed by zeros; ffmpeg's bitrate estimate counted them as audio (11 s read
    as 26,000 s), so the API's 6-hour limit refused the file before it was decoded; and
    decoding read the zeros as one packet as large as they are."""
    speech = load(eval_root / "en/whisper/jfk.flac")
    clean = write_audio(tmp_path / f"clean{suffix}", resample(speech, rate), rate, codec, fmt=fmt)
    length = probe(clean).duration
    assert length is not None and 10.5 < length < 12.0
    data = clean.read_bytes()
    padded, junk = tmp_path / f"padded{suffix}", tmp_path / f"junk{suffix}"
    padded.write_bytes(data)
    with padded.open("r+b") as f:
        f.truncate(len(data) + 1_000_000_000)  # sparse: a gigabyte of zeros on no disk
    junk.write_bytes(data + np.random.default_rng(1).integers(0, 256, 300_000, np.uint8).tobytes())
    for path in (padded, junk):
        info = probe(path)
        assert info.duration is not None and abs(info.duration - length) < 0.5, path.name
        info.check(Clip(), 6 * 3600.0)  # no UploadTooLargeError
    # The zeros are not read: not as a packet of a gigabyte, nor as a damaged one.
    said: list[Notice] = []
    assert abs(len(decoded(padded, notices=said)) - len(decoded(clean))) < 0.05 * SR
    assert said == []


@pytest.mark.parametrize(
    ("suffix", "codec", "fmt", "rate"),
    [
        (".opus", "libopus", "ogg", 48000),
        (".ts", "mp2", "mpegts", 16000),
        (".wv", "wavpack", "wv", 16000),
    ],
)
def test_a_container_followed_by_preallocated_zeros_is_read_whole(
    tmp_path: Path, eval_root: Path, suffix: str, codec: str, fmt: str, rate: int
) -> None:
    """The same zeros after an Ogg, a TS or a WavPack file: the demuxer broke off at them,
    and a whole recording was refused as damaged or truncated."""
    speech = load(eval_root / "en/whisper/jfk.flac")
    clean = write_audio(tmp_path / f"clean{suffix}", resample(speech, rate), rate, codec, fmt=fmt)
    padded = tmp_path / f"padded{suffix}"
    padded.write_bytes(clean.read_bytes())
    with padded.open("r+b") as f:
        f.truncate(f.seek(0, 2) + 200_000_000)
    said: list[Notice] = []
    assert abs(len(decoded(padded, notices=said)) - len(decoded(clean))) < 0.05 * SR
    assert said == []
    length = probe(padded).duration
    assert length is None or abs(length - (probe(clean).duration or 0.0)) < 0.5
    # Zeros that are sound, a WAV's silence at its end, are kept.
    quiet = write_audio(
        tmp_path / "quiet.wav", np.concatenate([speech, np.zeros(5 * SR, np.float32)])
    )
    assert len(decoded(quiet)) == len(speech) + 5 * SR


@pytest.mark.parametrize(("suffix", "codec", "fmt"), [(".mp3", "libmp3lame", None),
                                                      (".aac", "aac", "adts")])  # fmt: skip
def test_concatenated_files_with_different_rates(
    tmp_path: Path, suffix: str, codec: str, fmt: str | None
) -> None:
    # `cat a.mp3 b.mp3`: the rate (and so the resampler) changes in the middle.
    first = write_audio(tmp_path / f"a{suffix}", tone(3.0), rate=16000, codec=codec, fmt=fmt)
    later = tone(4.0, rate=48000)
    second = write_audio(tmp_path / f"b{suffix}", later, rate=48000, codec=codec, fmt=fmt)
    both = tmp_path / f"both{suffix}"
    both.write_bytes(first.read_bytes() + second.read_bytes())
    assert abs(len(decoded(both)) / SR - 7.0) < 0.3


@pytest.mark.parametrize("suffix", [".mkv", ".ts", ".mp4"])
def test_gap_in_timestamps_becomes_silence(tmp_path: Path, suffix: str) -> None:
    # A recorder that dropped a minute: the second block is stamped 61 s after the first.
    path = write_timed(tmp_path / f"gap{suffix}", [(0.0, tone(1.0)), (62.0, tone(2.0, 880))])
    said: list[Notice] = []
    audio = decoded(path, notices=said)
    (gap,) = said
    assert gap.code is NoticeCode.timestamp_gaps and gap.values["gaps"] == 1
    assert float(gap.values["seconds"]) == pytest.approx(61.0, abs=0.2)
    assert abs(len(audio) / SR - 64.0) < 0.3
    loud = np.flatnonzero(np.abs(audio) > 0.1) / SR
    assert loud.min() < 0.1 and 0.9 < loud[loud < 30].max() < 1.1
    assert 61.9 < loud[loud > 30].min() < 62.2


@pytest.mark.slow
def test_gap_keeps_later_speech_at_its_time(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    ru = load(eval_root / RU)
    jfk = load(eval_root / "en/whisper/jfk.flac")
    path = write_timed(tmp_path / "dropout.mkv", [(0.0, ru), (90.0, jfk)])
    t = pipeline.run(path, TranscriptionOptions(language="en", word_timestamps=True))
    fellow = [w for s in t.segments for w in s.words if "fellow" in w.word.lower()]
    assert fellow and all(90.0 < w.start < 101.0 for w in fellow), t.segments
    assert t.duration == pytest.approx(101.0, abs=0.3)
    assert [n.code for n in t.notices] == [NoticeCode.timestamp_gaps]


def test_broadcast_and_radio_timestamps_start_at_zero(tmp_path: Path) -> None:
    # A TV capture's clock or an internet radio's granule count starts hours in; players
    # show such a file from 0:00, and its length is what it holds, not where it ends.
    for suffix, codec in ((".ts", "aac"), (".ogg", "libopus")):
        path = write_timed(tmp_path / f"late{suffix}", [(36000.0, tone(3.0))], codec=codec)
        info = probe(path)
        assert info.start_offset == pytest.approx(0.0, abs=0.05)
        assert info.duration == pytest.approx(3.0, abs=0.1)
        assert abs(len(decoded(path)) / SR - 3.0) < 0.1


def test_first_audio_track_shorter_than_the_file(tmp_path: Path) -> None:
    # Matroska's duration covers every track; a short first track is not a truncated file.
    path = write_streams(tmp_path / "tracks.mkv", [tone(3.0), tone(9.0, 880)], rate=16000)
    assert probe(path).duration == pytest.approx(3.0, abs=0.1)
    assert abs(len(decoded(path)) / SR - 3.0) < 0.1


def test_the_default_audio_track_is_transcribed_and_the_others_named(
    pipeline: Pipeline, tmp_path: Path, eval_root: Path
) -> None:
    # A film with a commentary track first and the main language marked as the default.
    speech = load(eval_root / RU)
    path = write_streams(tmp_path / "film.mkv", [tone(len(speech) / SR), speech], rate=16000,
                         codec="pcm_s16le", default=1, language="rus")  # fmt: skip
    info = probe(path)
    assert (info.tracks, info.track, info.track_language) == (2, 1, "rus")
    said: list[Notice] = []
    audio = decoded(path, notices=said)
    assert np.abs(audio[: len(speech)] - speech).max() < 0.01  # the speech, not the tone
    assert [n.code for n in said] == [NoticeCode.other_tracks]
    assert said[0].values == {"tracks": 2, "track": 2, "language": " (rus)"}
    assert "track 2 (rus) was transcribed" in said[0].message
    # With no track marked, the first is taken, as players do.
    plain = write_streams(tmp_path / "plain.mkv", [speech, tone(2.0)], rate=16000,
                          codec="pcm_s16le")  # fmt: skip
    said = []
    assert np.abs(decoded(plain, notices=said)[: len(speech)] - speech).max() < 0.01
    assert said[0].values["track"] == 1 and said[0].values["language"] == ""
    t = pipeline.run(path, TranscriptionOptions(language="ru"))
    assert corpus_wer([(RU_TEXT, t.text)], "ru") < 0.3, t.text
    assert NoticeCode.other_tracks in {n.code for n in t.notices}


# --- headers that lie or name what the service cannot do ---


@pytest.mark.parametrize(
    ("tag", "bits", "dtype"),
    [(1, 16, "i2"), (1, 24, "i3"), (1, 32, "i4"), (3, 32, "f4"), (3, 64, "f8")],
)
def test_big_endian_wav_reads_as_the_little_endian_one(
    tmp_path: Path, tag: int, bits: int, dtype: str
) -> None:
    """A RIFX file (a WAV with its numbers big-endian, from Mac and DAW tools) decodes to the
    same samples as the same audio in an ordinary WAV. ffmpeg reads its samples as
    little-endian: speech became loud noise and the transcript came back empty."""
    stereo = np.stack([tone(1.5), tone(1.5, freq=220.0, gain=0.2)], axis=1)

    def pcm(order: str) -> bytes:
        if tag == 3:
            return stereo.astype(order + dtype).tobytes()
        scaled = np.round(stereo * (2 ** (bits - 1) - 1)).astype("<i4")
        if bits == 24:
            b = scaled.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
            return (b if order == "<" else b[:, ::-1]).tobytes()
        return scaled.astype(order + dtype).tobytes()

    # A LIST chunk after the data, as tools write: it must not be read as samples.
    trailer = b"LIST" + (18).to_bytes(4, "big") + b"INFOISFT\0\0\0\x06ffmpeg"
    little = write_raw_wav(tmp_path / "le.wav", pcm("<"), channels=2, bits=bits, tag=tag)
    big = write_raw_wav(tmp_path / "be.wav", pcm(">"), channels=2, bits=bits, tag=tag,
                        big_endian=True, trailer=trailer)  # fmt: skip
    assert probe(big).duration == pytest.approx(1.5, abs=0.01)
    assert probe(big).channels == 2
    expected = decoded(little)
    got = decoded(big)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    assert np.abs(decoded(big, channel=1)).max() == pytest.approx(0.2, abs=0.01)


def test_big_endian_wav_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    path = write_raw_wav(tmp_path / "adpcm.wav", b"\0" * 4000, tag=2, bits=4, big_endian=True)
    with pytest.raises(errors.NotMediaError, match=r"big-endian WAV \(RIFX\) of format 2"):
        probe(path)


@pytest.mark.parametrize(
    ("tag", "bits", "valid"), [(1, 32, 24), (1, 32, 20), (1, 24, 16), (3, 32, 24)]
)
def test_wav_samples_stored_wider_than_their_valid_bits(
    tmp_path: Path, tag: int, bits: int, valid: int
) -> None:
    """WAVE_FORMAT_EXTENSIBLE with 24 valid bits in 32-bit samples (Windows capture, audio
    interfaces) decodes to the same samples as the plain WAV. ffmpeg sizes the samples by
    their valid bits: it decoded NaN noise (a false 'truncated' for mono, an IndexError
    for stereo) or refused the codec."""
    stereo = np.stack([tone(1.5), tone(1.5, freq=220.0, gain=0.2)], axis=1)
    if tag == 3:
        data = stereo.astype("<f4").tobytes()
    else:  # left-justified in its container, as the format requires
        scaled = np.round(stereo * (2 ** (valid - 1) - 1)).astype("<i8") << (bits - valid)
        store = scaled.astype("<i4").view(np.uint8).reshape(-1, 4)[:, : bits // 8]
        data = np.ascontiguousarray(store).tobytes()
    path = write_raw_wav(tmp_path / "ext.wav", data, channels=2, bits=bits, tag=tag,
                         valid_bits=valid)  # fmt: skip
    plain = write_audio(tmp_path / "plain.wav", stereo.T.copy(), layout="stereo")
    assert probe(path).duration == pytest.approx(1.5, abs=0.01)
    got, expected = decoded(path), decoded(plain)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    assert np.abs(decoded(path, channel=1)).max() == pytest.approx(0.2, abs=0.01)
    # Cut to a quarter of its data: refused as truncated, as any WAV is.
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[: 100 + len(data) // 4])
    with pytest.raises(errors.TruncatedMediaError, match="truncated"):
        list(stream_audio(cut))


@pytest.mark.parametrize("odd", ["LIST", "bext", "fmt "])
def test_wav_chunk_of_odd_size_without_its_pad_byte(tmp_path: Path, odd: str) -> None:
    """RIFF pads a chunk of odd size to an even one; some tagging and recording tools
    leave the pad byte out. ffmpeg looked for the next chunk a byte on, missed the data
    chunk and the file was refused as not media; it is read, padded or not."""
    import struct

    stereo = np.stack([tone(1.5), tone(1.5, freq=220.0, gain=0.2)], axis=1)
    plain = write_raw_wav(tmp_path / "plain.wav", (stereo * 32767).astype("<i2").tobytes(),
                          channels=2)  # fmt: skip
    fmt = struct.pack("<HHIIHH", 1, 2, SR, SR * 4, 4, 16)
    pcm = (stereo * 32767).astype("<i2").tobytes()

    def chunk(cid: str, payload: bytes, pad: bool) -> bytes:  # pad: as RIFF asks
        tail = bytes(pad and len(payload) % 2)
        return cid.encode() + struct.pack("<I", len(payload)) + payload + tail

    for padded in (False, True):
        if odd == "fmt ":  # the format chunk itself, with a stray byte after its fields
            chunks = chunk("fmt ", fmt + b"\0", padded)
        else:
            body = b"INFOISFT\x05\0\0\0Tool\0" if odd == "LIST" else bytes(601)
            chunks = chunk("fmt ", fmt, False) + chunk(odd, body, padded)
        riff = b"WAVE" + chunks + chunk("data", pcm, False)
        path = tmp_path / f"odd_{padded}.wav"
        path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
        got = decoded(path)
        assert got.shape == decoded(plain).shape, padded
        assert np.abs(got - decoded(plain)).max() < 1e-3, padded
        assert np.abs(decoded(path, channel=1)).max() == pytest.approx(0.2, abs=0.01)
        if padded:  # a well-formed file is read as any WAV
            assert probe(path).format_name == "wav"


@pytest.mark.parametrize(
    ("suffix", "audio_at"),
    [(".mkv", 3.0), (".mkv", 12.0), (".ts", 3.0), (".ts", 12.0), (".mp4", 12.0)],
)
def test_video_whose_sound_starts_late(
    eval_root: Path, tmp_path: Path, suffix: str, audio_at: float
) -> None:
    """Sound that starts seconds into a video (a screen recording, a late capture) is read
    whole, on the video's clock, with no damage reported. ffmpeg's Matroska muxer writes a
    track's end time where others write its length, so an mkv whose sound began at 3 s was
    refused as truncated; in MPEG-TS, sound that begins after ffmpeg's probe window was
    reported as a jump in the timestamps."""
    speech = load(eval_root / "en/whisper/jfk.flac")
    path = write_video_with_late_audio(tmp_path / f"late{suffix}", speech, audio_at, 30.0)
    info = probe(path)
    notices: list[Notice] = []
    audio = decoded(path, notices=notices)
    assert not {NoticeCode.timestamp_gaps, NoticeCode.damaged_audio} & {n.code for n in notices}
    heard = np.flatnonzero(np.abs(audio) > 0.05)
    first_sound = info.start_offset + heard[0] / SR
    last_sound = info.start_offset + heard[-1] / SR
    # JFK's first word comes about 0.3 s into the clip, its last about 10.5 s.
    assert audio_at < first_sound < audio_at + 1.0
    assert audio_at + 9.5 < last_sound < audio_at + len(speech) / SR + 0.2
    if info.exact:
        assert info.duration is not None
        assert info.duration == pytest.approx(len(audio) / SR, abs=0.2)


def test_many_channels_of_unknown_order(tmp_path: Path) -> None:
    voice = tone(2.0)
    pcm = (voice * 32767).astype("<i2")
    for n in (9, 16):
        path = write_raw_wav(tmp_path / f"ch{n}.wav", np.repeat(pcm[:, None], n, 1).tobytes(),
                             channels=n)  # fmt: skip
        mixed = decoded(path)
        assert abs(len(mixed) / SR - 2.0) < 0.05
        assert np.abs(mixed).max() == pytest.approx(0.3, abs=0.02)
    # One channel of nine: PyAV crashes the process on planar audio of more than eight
    # channels, so this runs in a child that must exit cleanly.
    planes = np.zeros((2 * SR, 9), "<i2")
    planes[:, 8] = pcm
    path = write_raw_wav(tmp_path / "ninth.wav", planes.tobytes(), channels=9)
    code = (
        "import sys, numpy as np; from transcriber.media import stream_audio;"
        " a = [np.abs(np.concatenate(list(stream_audio(sys.argv[1], channel=c)))).max()"
        " for c in (0, 8)]; print(round(float(a[0]), 2), round(float(a[1]), 2))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["0.0", "0.3"]


def test_more_channels_than_can_be_mixed_are_named(tmp_path: Path) -> None:
    """ffmpeg's resampler takes at most 64 channels: a 65-channel recording failed with
    "audio could not be decoded (Invalid argument)"; now it is refused by its count."""
    pcm = (tone(1.0) * 32767).astype("<i2")
    for n in (64, 65):
        planes = np.zeros((SR, n), "<i2")
        planes[:, 0] = pcm
        path = write_raw_wav(tmp_path / f"ch{n}.wav", planes.tobytes(), channels=n)
        if n == 64:
            assert abs(len(decoded(path)) / SR - 1.0) < 0.01
            continue
        for read in (probe, decoded):
            with pytest.raises(errors.MediaError, match="has 65 channels, more than the 64"):
                read(path)


@pytest.mark.slow
@pytest.mark.parametrize(("suffix", "codec"), [(".wav", "pcm_s16le"), (".m4a", "aac")])
def test_channels_in_opposite_phase_are_not_mixed_into_silence(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path, suffix: str, codec: str
) -> None:
    """Right = −left (a wiring fault): the mono mix is silence. One channel is taken
    instead; ordinary stereo is still mixed."""
    voice = load(eval_root / RU)
    path = write_audio(tmp_path / f"inverted{suffix}", np.stack([voice, -voice]), codec=codec,
                       layout="stereo")  # fmt: skip
    assert np.array_equal(decoded(path), decoded(path, channel=0))
    t = pipeline.run(path, TranscriptionOptions(language="ru"))
    assert corpus_wer([(RU_TEXT, t.text)], "ru") < 0.4, t.text
    (alone,) = t.notices  # the transcript says which channel it is
    assert alone.code is NoticeCode.channel_alone and alone.values == {"channel": 1}
    # A silent channel, or a voice and a tone, are still mixed (ffmpeg's gains differ by
    # layout, so the mix is compared by its shape, not its level).
    for name, right in [("one", np.zeros_like(voice)), ("two", tone(len(voice) / SR))]:
        path = write_audio(tmp_path / f"{name}{suffix}", np.stack([voice, right]), codec=codec,
                           layout="stereo")  # fmt: skip
        said: list[Notice] = []
        mixed, both = decoded(path, notices=said), decoded(path, 0) + decoded(path, 1)
        assert np.corrcoef(mixed, both)[0, 1] > 0.999
        assert said == []


def test_broken_float_samples_on_several_channels(tmp_path: Path) -> None:
    """NaN or infinities in a stereo float WAV: the channel scan sees them as the silence
    the decoded audio has there; they made its sums NaN (an IndexError for NaN), and
    channels in opposite phase then went unnoticed and were mixed into silence."""
    voice = tone(3.0)
    for name, left, right, bad in [
        ("nan", voice, voice * 0.5, np.nan),
        ("inf", voice, voice * 0.5, np.inf),
        ("inverted", voice, -voice, np.inf),
    ]:
        samples = np.stack([left, right], 1)
        samples[SR : SR + 50] = bad
        path = write_raw_wav(tmp_path / f"{name}.wav", samples.astype("<f4").tobytes(),
                             channels=2, bits=32, tag=3)  # fmt: skip
        said: list[Notice] = []
        audio = decoded(path, notices=said)
        assert np.isfinite(audio).all() and abs(len(audio) / SR - 3.0) < 0.05
        assert 0.1 < float(np.abs(audio[2 * SR :]).max()) <= 1.0, name  # not mixed away
        inverted = name == "inverted"
        assert [n.code for n in said] == ([NoticeCode.channel_alone] if inverted else []), name


def test_unknown_codec_and_impossible_rate_are_named(tmp_path: Path) -> None:
    pcm = (tone(1.0) * 32767).astype("<i2").tobytes()
    odd = write_raw_wav(tmp_path / "odd codec.wav", pcm, tag=0x7777)
    with pytest.raises(errors.MediaError, match="codec this service cannot decode") as info:
        probe(odd)
    assert str(odd) in info.value.message
    fast = write_raw_wav(tmp_path / "fast.wav", pcm, rate=2**31 - 1)
    with pytest.raises(errors.NotMediaError, match="2147483647 Hz") as info:
        list(stream_audio(fast))
    assert str(fast) in info.value.message
    # 16 kHz speech whose header says 1 Hz would be 4.4 hours of nothing to decode.
    for rate in (1, 999):
        slow = write_raw_wav(tmp_path / f"slow{rate}.wav", pcm, rate=rate)
        with pytest.raises(errors.NotMediaError, match=f"claims {rate} Hz") as info:
            probe(slow)
    # A header that claims no channels is refused when probed (at upload), not later.
    with pytest.raises(errors.NotMediaError, match="claims 0 channels"):
        probe(write_raw_wav(tmp_path / "none.wav", pcm, channels=0))
    # The lowest real rates still pass.
    assert probe(write_raw_wav(tmp_path / "low.wav", pcm[:8000], rate=4000)).sample_rate == 4000


def write_packets(path: Path, audio: np.ndarray, samples: int, rate: int = SR) -> Path:
    """`audio` as raw PCM in Matroska, `samples` to a packet (the whole of it if 0)."""
    fmt, kind = ("u8", "pcm_u8") if rate < SR else ("s16", "pcm_s16le")
    pcm = (audio * 127 + 128).astype(np.uint8) if fmt == "u8" else (audio * 32767).astype("<i2")
    step = samples or len(pcm)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream(kind, rate=rate, layout="mono")
        for at in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[None, at : at + step], format=fmt,
                                               layout="mono")  # fmt: skip
            frame.sample_rate, frame.pts = rate, at
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_one_huge_packet_is_converted_in_pieces(tmp_path: Path, eval_root: Path) -> None:
    # 30 minutes of 8-bit, 8 kHz speech muxed as one packet (14 MB): converted whole,
    # the resampler's float copies of it peaked at 845 MB; in pieces, about 95 MB.
    speech = load(eval_root / RU)[::2]
    path = write_packets(tmp_path / "one packet.mkv", np.resize(speech, 1800 * 8000), 0, 8000)
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's (this test process).
    script = (
        "import re, sys; from pathlib import Path; from transcriber.media import stream_audio\n"
        "n = sum(len(c) for c in stream_audio(sys.argv[1]))\n"
        "hwm = re.search(r'VmHWM:\\s*(\\d+)', Path('/proc/self/status').read_text())[1]\n"
        "print(n, int(hwm) // 1024)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    samples, peak_mb = map(int, done.stdout.split())
    assert samples == 1800 * SR
    assert peak_mb < 300, f"decoding one 14 MB packet peaked at {peak_mb} MB"


def test_audio_cut_into_one_sample_packets_is_refused(tmp_path: Path, eval_root: Path) -> None:
    # Each packet costs tens of microseconds of Python: 60 s took 73 s to transcribe.
    speech = load(eval_root / RU)[: 2 * SR]
    with pytest.raises(errors.MediaError, match=r"frames of 1\.0 samples") as info:
        decoded(write_packets(tmp_path / "dust.mkv", speech, 1))
    assert "re-encode" in info.value.message
    # Short frames that real codecs make (2.5 ms) are taken.
    fine = decoded(write_packets(tmp_path / "fine.mkv", speech, 40))
    assert len(fine) == len(speech)


def test_a_second_wav_joined_to_the_first_is_named(tmp_path: Path, eval_root: Path) -> None:
    # `cat a.wav b.wav`: ffmpeg reads the first file's data chunk and stops there.
    first = write_audio(tmp_path / "a.wav", load(eval_root / RU)).read_bytes()
    second = write_audio(tmp_path / "b.wav", tone(11.0)).read_bytes()
    joined = tmp_path / "both.wav"
    joined.write_bytes(first + second)
    said: list[Notice] = []
    assert len(decoded(joined, notices=said)) == len(decoded(tmp_path / "a.wav"))
    assert [n.code for n in said] == [NoticeCode.unread_audio]
    assert 10.5 < float(said[0].values["seconds"]) < 11.5 and said[0].values["kind"] == "WAV"
    # Metadata chunks after the audio are normal, and say nothing.
    info = b"INFOINAM\x06\x00\x00\x00title\x00"
    tagged = tmp_path / "tagged.wav"
    tagged.write_bytes(first + b"LIST" + len(info).to_bytes(4, "little") + info)
    quiet: list[Notice] = []
    decoded(tagged, notices=quiet)
    assert quiet == []


@pytest.mark.parametrize(("fmt", "options"), [("ipod", {}), ("mp4", {"movflags": "+faststart"}),
                                              ("mov", {})])  # fmt: skip
def test_a_second_mp4_joined_to_the_first_is_named(
    tmp_path: Path, eval_root: Path, fmt: str, options: dict[str, str]
) -> None:
    # `cat a.m4a b.m4a`: ffmpeg reads the first file's index (moov) and stops there.
    first = write_audio(tmp_path / "a.mp4", load(eval_root / RU), codec="aac", fmt=fmt,
                        options=options)  # fmt: skip
    second = write_audio(tmp_path / "b.mp4", tone(11.0), codec="aac", fmt=fmt, options=options)
    joined = tmp_path / "both.mp4"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    said: list[Notice] = []
    assert len(decoded(joined, notices=said)) == len(decoded(first))
    assert [n.code for n in said] == [NoticeCode.unread_audio]
    assert 10.5 < float(said[0].values["seconds"]) < 11.5
    assert said[0].values["bytes"] == second.stat().st_size
    assert said[0].values["kind"] == "MP4/MOV"  # the web page's sentence names it
    # A fragmented MP4 (a stream recorder's) goes on in media boxes of its own: it is whole.
    fragments = write_audio(tmp_path / "frag.mp4", tone(11.0), codec="aac", fmt="mp4",
                            options={"movflags": "frag_keyframe+empty_moov",
                                     "frag_duration": "1000000"})  # fmt: skip
    quiet: list[Notice] = []
    assert abs(len(decoded(fragments, notices=quiet)) / SR - 11.0) < 0.1
    assert quiet == []


def test_a_wav_with_two_data_chunks_is_read_whole(tmp_path: Path, eval_root: Path) -> None:
    """A WAV whose samples come in two data chunks (a recorder or an editor that appends
    a block as a chunk of its own): ffmpeg read the last chunk only, so the first part of
    the recording was silently missing."""
    speech = load(eval_root / RU)
    pcm = [(a * 32767).astype("<i2").tobytes() for a in (speech, tone(3.0, 880))]
    fmt = b"fmt " + (16).to_bytes(4, "little") + struct.pack("<HHIIHH", 1, 1, SR, 2 * SR, 2, 16)
    for between in (b"", b"LIST\x05\x00\x00\x00INFO\x00\x00"):  # odd size: a pad byte
        chunks = [b"data" + len(p).to_bytes(4, "little") + p for p in pcm]
        body = b"WAVE" + fmt + chunks[0] + between + chunks[1]
        path = tmp_path / "two.wav"
        path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
        assert probe(path).duration == pytest.approx(len(speech) / SR + 3.0, abs=0.01)
        said: list[Notice] = []
        audio = decoded(path, notices=said)
        assert len(audio) == len(speech) + 3 * SR and said == []
        assert np.abs(audio[: len(speech)] - speech).max() < 1e-3  # the first, in its place
        assert np.abs(audio[len(speech) :]).max() > 0.25


def test_a_wav_header_that_states_too_little_audio_is_read_to_the_end(
    tmp_path: Path, eval_root: Path
) -> None:
    # A recorder that stopped before it wrote the final size (here: the first second's
    # size only). ffmpeg believes the header and would drop the rest unread.
    speech = load(eval_root / RU)
    whole = bytearray(write_audio(tmp_path / "whole.wav", speech).read_bytes())
    at = whole.find(b"data")
    whole[at + 4 : at + 8] = (2 * SR).to_bytes(4, "little")
    short = tmp_path / "short_header.wav"
    short.write_bytes(whole)
    info = probe(short)
    assert abs((info.duration or 0) - len(speech) / SR) < 0.01  # limits see all of it
    assert len(decoded(short)) == len(speech)
    # A metadata chunk after the data, however large, is a chunk and not audio.
    blob = bytes(range(256)) * 250  # 64 kB: two seconds' worth of bytes at 16 kHz
    tagged = tmp_path / "tagged.wav"
    plain = write_audio(tmp_path / "plain.wav", speech).read_bytes()
    tagged.write_bytes(plain + b"id3 " + len(blob).to_bytes(4, "little") + blob)
    assert len(decoded(tagged)) == len(speech)
    assert abs((probe(tagged).duration or 0) - len(speech) / SR) < 0.01
    # Zeros after the stated size are space a recorder preallocated, not audio: a GB of
    # them read as nine hours of silence, past the API's limit; and ffmpeg, walking them
    # as empty chunks of 8 bytes, took two minutes to open the file.
    padded = tmp_path / "preallocated.wav"
    padded.write_bytes(plain)
    with padded.open("r+b") as f:
        f.truncate(len(plain) + 1_000_000_000)
    started = time.monotonic()
    assert abs((probe(padded).duration or 0) - len(speech) / SR) < 0.01
    assert len(decoded(padded)) == len(speech)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("codec", ["libopus", "flac"])
def test_an_ogg_file_cut_short_says_so(tmp_path: Path, eval_root: Path, codec: str) -> None:
    # An Ogg's duration is read from its last page, so a cut file looks whole to ffmpeg.
    speech = np.concatenate([load(eval_root / RU)] * 3)
    path = write_audio(tmp_path / "whole.ogg", speech, codec=codec, fmt="ogg")
    said: list[Notice] = []
    decoded(path, notices=said)
    assert said == []
    whole_zeroed = tmp_path / "whole_zeroed.ogg"
    whole_zeroed.write_bytes(path.read_bytes() + bytes(300_000))
    decoded(whole_zeroed, notices=said)
    assert said == []
    data = path.read_bytes()
    pages = [i for i in range(len(data)) if data.startswith(b"OggS", i)]
    mid_page = tmp_path / "mid_page.ogg"
    mid_page.write_bytes(data[: len(data) // 2])
    at_page = tmp_path / "at_page.ogg"
    at_page.write_bytes(data[: pages[len(pages) // 2]])
    # A recorder that preallocated its file and died: the cut page, then zeros.
    zeroed = tmp_path / "zeroed.ogg"
    zeroed.write_bytes(data[: len(data) // 2] + bytes(300_000))
    for cut, why in ((mid_page, "breaks off in the middle of a page"),
                     (at_page, "has no end-of-stream mark"),
                     (zeroed, "has no end-of-stream mark")):  # fmt: skip
        said = []
        audio = decoded(cut, notices=said)
        assert [n.code for n in said] == [NoticeCode.cut_short], cut.name
        assert why in said[0].message
        seconds = float(said[0].values["seconds"])
        assert 0 < seconds < len(speech) / SR * 0.8
        assert abs(seconds - len(audio) / SR) < 0.1


def test_a_webm_recording_cut_short_says_so(tmp_path: Path, eval_root: Path) -> None:
    """WebM written as it is recorded (a browser's MediaRecorder; OBS's MKV) states no
    duration, so a cut file looked whole and the lost end went unsaid."""
    speech = load(eval_root / RU)
    path = write_audio(tmp_path / "whole.webm", resample(speech, 48000), rate=48000,
                       codec="libopus", options={"live": "1"})  # fmt: skip
    assert probe(path).duration is None
    said: list[Notice] = []
    assert abs(len(decoded(path, notices=said)) / SR - len(speech) / SR) < 0.05
    assert said == []
    cut = tmp_path / "cut.webm"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3 + 7])
    audio = decoded(cut, notices=said)
    assert [n.code for n in said] == [NoticeCode.cut_short]
    assert "breaks off in the middle of a block" in said[0].message
    seconds = float(said[0].values["seconds"])
    assert 0 < seconds < len(speech) / SR * 0.8 and abs(seconds - len(audio) / SR) < 0.1
    # With a duration, a file cut as short is refused, as before.
    stated = write_audio(tmp_path / "stated.webm", speech, codec="libopus")
    (tmp_path / "stated_cut.webm").write_bytes(stated.read_bytes()[: stated.stat().st_size // 3])
    with pytest.raises(errors.TruncatedMediaError, match="truncated"):
        decoded(tmp_path / "stated_cut.webm")


@pytest.mark.parametrize("suffix", [".m4a", ".mov"])
def test_an_mp4_without_its_index_is_named_as_unfinished(tmp_path: Path, suffix: str) -> None:
    """A phone or camera recording never finished, or a download cut short: the index
    (moov) is written at the end, so it is missing or cut. ffmpeg said only "invalid
    data", and the file was called "not a media file, or damaged"."""
    path = write_audio(tmp_path / f"whole{suffix}", tone(6.0), codec="aac")
    data = path.read_bytes()
    moov = data.rfind(b"moov") - 4
    assert moov > data.find(b"mdat")  # ffmpeg's muxer writes the index last
    for name, size in (("no_index", len(data) // 2), ("half_index", (moov + len(data)) // 2)):
        cut = tmp_path / f"{name}{suffix}"
        cut.write_bytes(data[:size])
        with pytest.raises(errors.TruncatedMediaError, match="has no index") as info:
            probe(cut)
        assert info.value.message.startswith(f"{cut}: the MP4/MOV file"), name
    # Whole, it is read as before; boxes with no media data in them are not media.
    assert abs(len(decoded(path)) / SR - 6.0) < 0.1
    (tmp_path / "junk.mp4").write_bytes(b"\0\0\0\x10ftypisom" + bytes(500))
    with pytest.raises(errors.NotMediaError, match="not a media file"):
        probe(tmp_path / "junk.mp4")


@pytest.mark.parametrize("codec", ["alac", "pcm_s16le"])
def test_a_caf_cut_short_is_named_as_incomplete(tmp_path: Path, codec: str) -> None:
    """A CAF (an iPhone or a Mac app's recording) cut short: compressed audio has its
    packet table (pakt) after the data, so ffmpeg refused the file as not media."""
    path = write_audio(tmp_path / "whole.caf", tone(6.0), codec=codec, fmt="caf")
    data = path.read_bytes()
    assert abs(len(decoded(path)) / SR - 6.0) < 0.1
    cut = tmp_path / "cut.caf"
    cut.write_bytes(data[: len(data) // 2])
    if codec == "pcm_s16le":  # each packet's place is known: what is there is read
        assert 2.5 < len(decoded(cut)) / SR < 3.5
        # Its duration is its data chunk's, not an estimate over the file: zeros after
        # it (a recorder's preallocated space) made hours of it, and ffmpeg walked them
        # as empty chunks when it opened the file.
        padded = tmp_path / "padded.caf"
        padded.write_bytes(data)
        with padded.open("r+b") as f:
            f.truncate(len(data) + 1_000_000_000)
        started = time.monotonic()
        assert probe(padded).duration == pytest.approx(6.0, abs=0.01)
        assert abs(len(decoded(padded)) / SR - 6.0) < 0.01
        assert time.monotonic() - started < 10
        return
    with pytest.raises(errors.TruncatedMediaError, match="its data chunk states") as info:
        probe(cut)
    assert info.value.message.startswith(f"{cut}: the CAF file is incomplete")
    cut.write_bytes(data[: data.rfind(b"pakt")])  # the audio whole, its table not
    with pytest.raises(errors.TruncatedMediaError, match="no packet table"):
        probe(cut)


def test_scripts_naming_other_files_are_not_followed(tmp_path: Path) -> None:
    # ffmpeg would read what such a file names: a sibling upload, itself (until it runs out
    # of file handles), a local path or a URL. The service must read only the file given.
    write_audio(tmp_path / "input", tone(2.0), fmt="wav")
    scripts = {
        "list.mp3": "ffconcat version 1.0\nfile input\nfile input\n",
        "self.mp3": "ffconcat version 1.0\nfile self.mp3\n",
        "feed.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\ninput\n#EXT-X-ENDLIST\n",
    }
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(errors.NotMediaError, match="a playlist that names other files") as e:
            list(stream_audio(path))
        assert str(path) in e.value.message


def test_file_names_that_look_like_protocols(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ffmpeg reads "pipe:0" as standard input and "concat:a|b" as two files joined.
    monkeypatch.chdir(tmp_path)
    write_audio(tmp_path / "a.wav", tone(0.25))
    for name in ("pipe:0", "concat:a.wav|a.wav"):
        write_audio(tmp_path / name, tone(1.0), fmt="wav")
        assert abs(len(decoded(Path(name))) / SR - 1.0) < 0.01


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("page.mp4", b"<!DOCTYPE html><html><title>404 Not Found</title></html>\n", "web page"),
        ("talk.mp3.gz", b"\x1f\x8b\x08\x00" + bytes(500), "archive"),
        ("paper.m4a", b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 20, "PDF document"),
        ("notes.wav", b"just text\n" * 100, "not a media file"),
    ],
)
def test_other_kinds_of_file_are_named(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(errors.NotMediaError) as info:
        probe(path)
    assert info.value.message.startswith(f"{path}: cannot be read as audio or video")
    assert words in info.value.message and "not a media file" in info.value.message


def test_containers_with_an_empty_audio_stream(tmp_path: Path) -> None:
    cases = {".wav": errors.EmptyFileError, ".flac": errors.EmptyFileError,
             ".mkv": errors.NotMediaError, ".ogg": errors.NotMediaError}  # fmt: skip
    for suffix, cls in cases.items():
        path = tmp_path / f"hollow{suffix}"
        codec = {".wav": "pcm_s16le", ".ogg": "libopus"}.get(suffix, "flac")
        with av.open(str(path), "w") as out:
            out.add_stream(codec, rate=48000, layout="mono")
            out.start_encoding()
        with pytest.raises(cls) as info:
            list(stream_audio(path))
        assert str(path) in info.value.message


# --- tiny and huge ---


@pytest.mark.slow
def test_very_quiet_speech_is_heard_and_quiet_noise_is_not(
    pipeline: Pipeline, tmp_path: Path, eval_root: Path
) -> None:
    # The speech detector found no speech in JFK peaking at -55 dBFS ("no speech was
    # found"), although Whisper reads it word for word.
    jfk = load(eval_root / "en/whisper/jfk.flac")
    reference = (
        "and so my fellow americans ask not what your country can do for you"
        " ask what you can do for your country"
    )
    for db in (-55, -65):
        quiet = jfk / float(np.abs(jfk).max()) * 10 ** (db / 20)
        t = pipeline.run(write_audio(tmp_path / f"jfk{-db}.wav", quiet),
                         TranscriptionOptions(language="en"))  # fmt: skip
        assert corpus_wer([(reference, t.text)], "en") < 0.3, (db, t.text)
    noise = np.random.default_rng(0).standard_normal(20 * SR).astype(np.float32)
    for db in (-45, -65):
        hiss = noise / float(np.abs(noise).max()) * 10 ** (db / 20)
        t = pipeline.run(write_audio(tmp_path / f"hiss{-db}.wav", hiss),
                         TranscriptionOptions(language="en"))  # fmt: skip
        assert t.segments == (), (db, t.text)


@pytest.mark.slow
def test_tiny_inputs_give_an_empty_transcript(pipeline: Pipeline, tmp_path: Path) -> None:
    for name, n in (("one_sample", 1), ("ten_ms", 160), ("third_second", 5333)):
        path = write_audio(tmp_path / f"{name}.wav", tone(1.0)[:n])
        t = pipeline.run(path, TranscriptionOptions(language="ru"))
        assert t.segments == () and t.duration == pytest.approx(n / SR, abs=0.002)
        assert [x.code for x in t.notices] == [NoticeCode.no_speech]
    # A millisecond of a codec with a start-up delay decodes to nothing at all (Opus's
    # pre-skip, LAME's padding): a valid recording, as short as the WAVs.
    for suffix, codec, fmt, rate in ((".opus", "libopus", "ogg", 48000),
                                     (".mp3", "libmp3lame", "mp3", 44100)):  # fmt: skip
        path = write_audio(tmp_path / f"ms{suffix}", tone(0.001, rate=rate), rate, codec, fmt=fmt)
        t = pipeline.run(path, TranscriptionOptions(language="ru"))
        assert t.segments == () and t.duration < 0.1, suffix
        assert [x.code for x in t.notices] == [NoticeCode.no_speech], suffix


@pytest.mark.slow
def test_half_an_hour_of_silence_in_a_small_file(pipeline: Pipeline, tmp_path: Path) -> None:
    path = write_silence(tmp_path / "quiet.flac", 1800.0)
    assert path.stat().st_size < 1_000_000  # 30 minutes: a decompression bomb in miniature
    tracemalloc.start()
    try:
        t = pipeline.run(path, TranscriptionOptions(language="ru"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert t.segments == () and t.duration == pytest.approx(1800.0, abs=1.0)
    assert [n.message for n in t.notices] == ["no speech was found in the 1800 s of audio"]
    # All of it was decoding: none of that time is taken off the (empty) recognition.
    assert t.timings["decode_vad"] > 0 and 0 <= t.timings["asr"] < 0.5, t.timings
    assert peak < 64e6, f"{peak / 1e6:.0f} MB held while decoding 30 min of silence"


# --- as a user meets them: the CLI and the API ---


@pytest.mark.slow
def test_cli_names_each_bad_file_and_finishes_the_rest(
    eval_root: Path, tmp_path: Path, model_cache: Path
) -> None:
    pcm = (tone(1.0) * 32767).astype("<i2").tobytes()
    odd = write_raw_wav(tmp_path / "odd.wav", pcm, tag=0x7777)
    page = tmp_path / "video.mp4"
    page.write_text("<html><body>404 Not Found</body></html>")
    folder = tmp_path / "folder.mp3"
    folder.mkdir()
    loud = write_float_wav(tmp_path / "Запись 1.wav", load(eval_root / RU) * 32767)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "transcriber", "transcribe", str(odd), str(page), str(folder),
         str(loud), "--language", "ru", "--format", "txt", "--output-dir", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TRANSCRIBER_MODEL_DIR": str(model_cache), "COLUMNS": "200"},
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors_ = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    expected = {odd: "codec", page: "web page", folder: "no audio or video file directly in"}
    for path, words in expected.items():
        assert any(str(path) in e and words in e for e in errors_), (path, r.stderr)
    assert len(errors_) == 3
    text = (out / "Запись 1.txt").read_text()
    assert corpus_wer([(RU_TEXT, text)], "ru") < 0.4, text


@pytest.mark.slow
def test_api_refuses_what_it_cannot_decode_at_upload(client: TestClient, tmp_path: Path) -> None:
    pcm = (tone(1.0) * 32767).astype("<i2").tobytes()
    cases = [
        (write_raw_wav(tmp_path / "odd.wav", pcm, tag=0x7777), "unsupported_media", "codec"),
        (write_raw_wav(tmp_path / "fast.wav", pcm, rate=2**31 - 1), "not_media", "Hz"),
    ]
    playlist = tmp_path / "show.mp3"
    playlist.write_text("ffconcat version 1.0\nfile input\n")
    cases.append((playlist, "not_media", "playlist"))
    for path, code, words in cases:
        with path.open("rb") as f:
            resp = client.post("/api/tasks", files={"file": (path.name, f)})
        assert resp.status_code == 415, resp.text
        error = resp.json()["error"]
        assert error["code"] == code
        assert error["message"].startswith(f"{path.name}: ") and words in error["message"]
    assert client.get("/api/tasks").json()["total"] == 0


def write_live_mkv(path: Path, audio: np.ndarray) -> Path:
    """Opus in Matroska as a live recorder writes it: no duration anywhere in the header."""
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(audio[None, :].astype(np.float32), format="fltp",
                                           layout="mono")  # fmt: skip
        frame.sample_rate = 16000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            f.pts = None
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.slow
def test_audio_longer_than_the_limit_fails_even_when_the_header_hides_it(
    tmp_path: Path, model_cache: Path, receiver: Receiver
) -> None:
    from tests.integration.conftest import make_client

    path = write_live_mkv(tmp_path / "live.mkv", tone(20.0) * 0.3)
    assert probe(path).duration is None  # so the upload check cannot know
    # Media named by URL is probed only once the worker has fetched it.
    receiver.files["long.wav"] = write_audio(tmp_path / "long.wav", tone(20.0) * 0.3)
    settings = {"max_duration_s": 5, "allow_private_urls": True}  # the host is 127.0.0.1
    with make_client(tmp_path, model_cache, workers=1, **settings) as c:
        with path.open("rb") as f:
            hidden = c.post("/api/tasks", files={"file": (path.name, f)})
        by_url = c.post("/api/tasks", data={"url": f"{receiver.url}/long.wav"})
        reasons = []
        for resp in (hidden, by_url):
            assert resp.status_code == 202, resp.text
            task = resp.json()
            for _ in range(600):
                task = c.get(f"/api/tasks/{task['id']}").json()
                if task["status"] not in ("queued", "processing"):
                    break
                time.sleep(0.1)
            assert task["status"] == "failed"
            reasons.append(task["error"])
        assert reasons[0].startswith("live.mkv: the audio runs past the limit of 5 s")
        assert reasons[1] == "long.wav: media is 20 s long; the limit is 5 s"


@pytest.mark.slow
def test_language_detection_reads_no_further_than_its_limit(
    client: TestClient, tmp_path: Path, eval_root: Path
) -> None:
    # Speech, but only after 10.5 minutes of silence: past what detection reads.
    speech = load(eval_root / next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru")["path"])
    audio = np.concatenate([np.zeros(int(SR * 630), np.float32), speech])
    late = write_audio(tmp_path / "late.flac", audio, codec="flac")
    with late.open("rb") as f:
        resp = client.post("/detect-language", files={"audio_file": (late.name, f)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["language_code"] == "und"
    assert body["reason"].startswith("late.flac: no speech was found in its first 10 minutes")


@pytest.mark.slow
def test_a_long_silence_can_be_cancelled_while_it_is_decoded(
    tmp_path: Path, model_cache: Path
) -> None:
    from tests.integration.conftest import make_client

    # Hours of silence give no speech windows and so no progress; the worker must still
    # see the cancellation between chunks instead of decoding to the end (about a minute
    # here), and be free for the next task at once.
    quiet = write_silence(tmp_path / "quiet.flac", 16 * 3600.0)
    short = write_audio(tmp_path / "short.wav", tone(1.0))
    with make_client(tmp_path, model_cache, workers=1, max_duration_s=86400) as c:
        with quiet.open("rb") as f:
            long_task = c.post("/api/tasks", files={"file": (quiet.name, f)}).json()
        while c.get(f"/api/tasks/{long_task['id']}").json()["status"] != "processing":
            time.sleep(0.05)
        time.sleep(1.0)  # well into the silence
        assert c.delete(f"/api/tasks/{long_task['id']}").json()["status"] == "cancelled"
        cancelled_at = time.monotonic()
        with short.open("rb") as f:
            next_task = c.post("/api/tasks", files={"file": (short.name, f)}).json()
        while c.get(f"/api/tasks/{next_task['id']}").json()["status"] == "queued":
            assert time.monotonic() - cancelled_at < 10.0, "the worker decoded on"
            time.sleep(0.05)
