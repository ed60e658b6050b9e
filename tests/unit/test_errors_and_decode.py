"""Every bad input gets its own error class and a message naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import write_audio, write_silent_video
from transcriber import errors
from transcriber.media import probe, stream_audio


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


def test_truncated_wav_is_reported(tmp_path: Path) -> None:
    audio = (np.sin(np.arange(16000 * 6) / 10) * 0.3).astype(np.float32)
    whole = write_audio(tmp_path / "w.wav", audio).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(errors.TruncatedMediaError, match="truncated"):
        for _ in stream_audio(cut):
            pass


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
