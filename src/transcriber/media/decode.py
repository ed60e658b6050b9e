"""Probe a media file and stream its first audio stream as 16 kHz float32 chunks.

PyAV runs ffmpeg in-process, so no system ffmpeg is needed. The whole file is
never held in memory: frames are resampled as they are demuxed and handed on
in chunks of a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from transcriber.errors import (
    EmptyFileError,
    FileMissingError,
    NoAudioStreamError,
    NotMediaError,
    TruncatedMediaError,
)

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 5.0
# Container formats whose declared duration is exact, so a short decode means truncation.
# (mp3 and raw ADTS estimate duration from the bitrate and can be far off for VBR.)
_EXACT_DURATION = {"wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "ogg", "w64", "aiff"}


@dataclass(frozen=True, slots=True)
class MediaInfo:
    path: Path
    format_name: str
    codec: str
    duration: float | None  # seconds, as the container declares it
    sample_rate: int
    channels: int
    has_video: bool
    start_offset: float  # seconds of the first audio sample on the file's own time axis


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise FileMissingError(f"{path}: file not found")
    if not path.is_file():
        raise NotMediaError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise EmptyFileError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise NotMediaError(
            f"{path}: cannot be read as audio or video ({_reason(e)});"
            " it is not a media file, or it is damaged or truncated"
        ) from e


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def probe(path: str | Path) -> MediaInfo:
    """Read the container header; raise a MediaError subclass if it has no usable audio."""
    path = Path(path)
    with _open(path) as container:
        return _info(path, container)


def _info(path: Path, container: av.container.InputContainer) -> MediaInfo:
    if not container.streams.audio:
        fmt = container.format.name
        if fmt.endswith("_pipe") or fmt == "image2":  # ffmpeg's demuxers for still images
            kind = f"an image ({fmt.removesuffix('_pipe')}), not audio or video"
        elif container.streams.video:
            kind = "a video with no audio stream"
        else:
            kind = "no audio stream"
        raise NoAudioStreamError(f"{path}: {kind}; nothing to transcribe")
    stream = container.streams.audio[0]
    duration: float | None = None
    start = 0.0
    if stream.start_time is not None and stream.time_base is not None:
        start = max(0.0, float(stream.start_time * stream.time_base))
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
        if "matroska" in container.format.name:
            # Matroska's Duration runs from time 0, not from the first sample.
            duration = max(0.0, duration - start)
    ctx = stream.codec_context
    if container.format.name == "wav":
        _check_wav_size(path)
    return MediaInfo(
        path=path,
        format_name=container.format.name,
        codec=ctx.name if ctx is not None else "unknown",
        duration=duration,
        sample_rate=ctx.sample_rate or 0,
        channels=ctx.channels or 0,
        has_video=bool(container.streams.video),
        start_offset=start,
    )


def stream_audio(
    path: str | Path, channel: int | None = None, chunk_seconds: float = CHUNK_SECONDS
) -> Iterator[np.ndarray]:
    """Yield float32 chunks of 16 kHz audio: mixed to mono, or only `channel` (0-based).

    Raises TruncatedMediaError at the end when the stream stops well short of
    the duration the container declares, or breaks off with a decode error.
    """
    path = Path(path)
    container = _open(path)
    with container:
        info = _info(path, container)
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"  # type: ignore[attr-defined]
        layout = "mono" if channel is None else None
        if channel is not None and channel >= max(1, info.channels):
            raise NoAudioStreamError(f"{path}: has no channel {channel + 1}")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        row = 0 if channel is None else channel
        target = int(chunk_seconds * SAMPLE_RATE)
        pending: list[np.ndarray] = []
        have = 0
        decoded = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray()[row])
                    have += out.samples
                if have >= target:
                    chunk = np.concatenate(pending).astype(np.float32, copy=False)
                    pending, have = [], 0
                    decoded += len(chunk)
                    yield chunk
            for out in resampler.resample(None):
                pending.append(out.to_ndarray()[row])
        except av.FFmpegError as e:
            seconds = (decoded + sum(len(p) for p in pending)) / SAMPLE_RATE
            if seconds == 0:
                raise NotMediaError(f"{path}: audio could not be decoded ({_reason(e)})") from e
            raise TruncatedMediaError(
                f"{path}: file is damaged or truncated; decoding broke off at {seconds:.1f} s"
                f" ({_reason(e)})"
            ) from e
        if pending:
            chunk = np.concatenate(pending).astype(np.float32, copy=False)
            decoded += len(chunk)
            yield chunk
        if decoded == 0:
            raise EmptyFileError(f"{path}: the audio stream holds no sound (0 samples)")
        _check_complete(info, decoded / SAMPLE_RATE)


def _check_wav_size(path: Path) -> None:
    """A WAV header states its data size exactly; a shorter file was cut off."""
    import struct

    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, length = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if length in (0, 0xFFFFFFFF):  # written by a streaming muxer: unknown
                    return
                if pos + 8 + length > size + 1:
                    have = size - pos - 8
                    raise TruncatedMediaError(
                        f"{path}: file is truncated: the WAV header promises {length} bytes"
                        f" of audio but only {have} are there ({have / length:.0%})"
                    )
                return
            pos += 8 + length + (length & 1)


def _check_complete(info: MediaInfo, seconds: float) -> None:
    if info.duration is None or info.format_name not in _EXACT_DURATION:
        return
    if info.duration - seconds > max(1.0, 0.05 * info.duration):
        raise TruncatedMediaError(
            f"{info.path}: file is truncated: the header promises {info.duration:.1f} s"
            f" of audio but only {seconds:.1f} s could be decoded"
        )
