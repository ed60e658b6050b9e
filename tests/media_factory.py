"""Make test media with PyAV: re-encodings of real speech, and broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from transcriber.media import stream_audio


def load(path: Path) -> np.ndarray:
    return np.concatenate(list(stream_audio(path)))


def write_audio(
    path: Path,
    audio: np.ndarray,
    rate: int = 16000,
    codec: str = "pcm_s16le",
    layout: str = "mono",
    fmt: str | None = None,
) -> Path:
    """Encode float32 audio (shape (n,) or (channels, n)) at `rate` into `path`."""
    planar = audio if audio.ndim == 2 else audio[None, :]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame_fmt = stream.codec_context.format.name
        step = 1024
        for i in range(0, planar.shape[1], step):
            block = np.ascontiguousarray(planar[:, i : i + step], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for f in _convert(frame, frame_fmt, layout, rate):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _convert(frame: av.AudioFrame, fmt: str, layout: str, rate: int) -> list[av.AudioFrame]:
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    return list(resampler.resample(frame))


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    n = int(len(audio) * rate / 16000)
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(
        np.float32
    )


def write_silent_video(path: Path, seconds: float = 2.0) -> Path:
    """A video with no audio stream at all."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), (i * 10) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
