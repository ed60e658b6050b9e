"""Raw PCM uploads (`encode=false`): read exactly as whisper-asr-webservice reads them,
and refused with a reason when they are not raw PCM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import raw_pcm, write_audio
from transcriber import errors
from transcriber.api.received import receive
from transcriber.media import probe, stream_audio
from transcriber.media.raw_pcm import BYTES_PER_SECOND, container_of

JFK = "en/whisper/jfk.flac"


def staged(folder: Path, body: bytes) -> Path:
    """`body` as UploadRoute leaves an upload: a file in the staging folder."""
    path = folder / "upload"
    path.write_bytes(body)
    return path


def test_raw_pcm_decodes_to_the_samples_whisper_asr_webservice_reads(
    tmp_path: Path, eval_root: Path
) -> None:
    pcm = raw_pcm(eval_root / JFK)  # 44.1 kHz stereo flac, as Bazarr's ffmpeg would give it
    got = receive(staged(tmp_path, pcm), "jfk", raw=True)
    assert (got.size, got.raw) == (len(pcm), True)
    assert got.sha256 == hashlib.sha256(pcm).hexdigest()  # of the bytes as uploaded
    info = probe(got.path)  # no guessing: the header says what the bytes are
    assert (info.format_name, info.sample_rate, info.channels) == ("wav", 16000, 1)
    assert info.exact and info.duration == pytest.approx(len(pcm) / BYTES_PER_SECOND)
    assert 10.5 < info.duration < 11.5
    decoded = np.concatenate(list(stream_audio(got.path)))
    # whisper-asr-webservice: np.frombuffer(body, np.int16) / 32768
    theirs = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0
    assert decoded.shape == theirs.shape
    assert np.abs(decoded - theirs).max() < 1e-4


def test_only_the_start_is_kept_when_asked(tmp_path: Path, eval_root: Path) -> None:
    pcm = raw_pcm(eval_root / JFK)
    got = receive(staged(tmp_path, pcm), "jfk", raw=True, keep_bytes=3 * 32000 + 1)
    assert got.size == len(pcm) and got.sha256 == hashlib.sha256(pcm).hexdigest()
    assert probe(got.path).duration == pytest.approx(3.0)  # whole samples only


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b"", errors.EmptyFileError, "the upload is empty (0 bytes)"),
        (b"\x01\x02\x03", errors.NotMediaError, "3 bytes is not a whole number of 16-bit"),
        (b"%PDF-1.7\n" + b"\0" * 99, errors.NotMediaError, "this is a PDF document, not raw"),
    ],
)
def test_what_is_not_raw_pcm_is_refused_with_the_reason(
    tmp_path: Path, body: bytes, error: type[errors.TranscriberError], says: str
) -> None:
    with pytest.raises(error) as info:
        receive(staged(tmp_path, body), "Film.mkv", raw=True)
    assert info.value.message.startswith("Film.mkv: ") and says in info.value.message
    assert "encode=true" in info.value.message  # and what to do instead
    assert isinstance(info.value, errors.InputError)


def test_media_files_sent_as_raw_pcm_are_named(tmp_path: Path) -> None:
    speech = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.3
    made = {
        "a WAV file": write_audio(tmp_path / "a.wav", speech),
        "a FLAC file": write_audio(tmp_path / "a.flac", speech, codec="flac"),
        "an MP4/M4A/MOV file": write_audio(tmp_path / "a.m4a", speech, codec="aac", fmt="mp4"),
        "an Ogg file (Opus or Vorbis)": write_audio(
            tmp_path / "a.ogg", speech, rate=48000, codec="libopus"
        ),
        "a Matroska/WebM file": write_audio(tmp_path / "a.mka", speech, codec="flac"),
    }
    for kind, path in made.items():
        body = path.read_bytes()
        assert container_of(body[:16]) == kind, path
        with pytest.raises(errors.NotMediaError) as info:
            receive(staged(tmp_path, body), path.name, raw=True)
        assert f"this is {kind}, not raw PCM" in info.value.message


def test_real_pcm_is_never_taken_for_a_container(eval_root: Path) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(-32768, 32767, 16000 * 60, dtype=np.int16).tobytes()
    bodies = [raw_pcm(eval_root / JFK), b"\0" * 64, noise]
    bodies += [noise[i : i + 16] for i in range(0, len(noise), 2)]  # every even offset
    assert [b for b in bodies if container_of(b[:16]) is not None] == []


def test_a_media_upload_is_read_where_it_lies(tmp_path: Path, eval_root: Path) -> None:
    body = (eval_root / JFK).read_bytes()
    upload = staged(tmp_path, body)
    got = receive(upload, "jfk.flac", raw=False)
    assert got.path == upload and got.path.read_bytes() == body
    assert got.sha256 == hashlib.sha256(body).hexdigest() and not got.raw
    assert receive(upload, "jfk.flac", raw=False, hashed=False).sha256 == ""
    got.discard()  # the upload is UploadRoute's to delete, not this
    assert upload.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"]


def test_the_wav_made_of_raw_pcm_is_beside_the_upload_until_discarded(
    tmp_path: Path, eval_root: Path
) -> None:
    got = receive(staged(tmp_path, raw_pcm(eval_root / JFK)), "jfk", raw=True)
    assert got.path.parent == tmp_path and got.path.suffix == ".wav"
    got.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"]
    with pytest.raises(errors.NotMediaError):  # a refusal leaves no WAV behind
        receive(staged(tmp_path, b"\x01\x02\x03"), "odd", raw=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"]
