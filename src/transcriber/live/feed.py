"""What `transcriber live` streams: a media file decoded to 16 kHz PCM, or raw audio
from stdin, in frames of FRAME_S; and how it shows what comes back."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from transcriber.live.audio import AudioFormat
from transcriber.live.client import FRAME_S
from transcriber.media import stream_audio
from transcriber.media.frames import SAMPLE_RATE


def file_frames(path: Path) -> Iterator[bytes]:
    """A media file's audio as 16 kHz 16-bit PCM, FRAME_S at a time (decoded as it goes)."""
    size = int(SAMPLE_RATE * FRAME_S)
    rest = np.zeros(0, np.float32)
    for chunk in stream_audio(path):
        rest = np.concatenate([rest, chunk])
        while len(rest) >= size:
            yield _pcm(rest[:size])
            rest = rest[size:]
    if len(rest):
        yield _pcm(rest)


def _pcm(audio: np.ndarray) -> bytes:
    return bytes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())


async def stdin_frames(fmt: AudioFormat, source: BinaryIO | None = None) -> AsyncIterator[bytes]:
    """Raw audio from stdin, FRAME_S at a time, read on a thread."""
    stream = source or sys.stdin.buffer
    size = int(fmt.sample_rate * FRAME_S) * fmt.bytes_per_sample
    while block := await asyncio.to_thread(stream.read, size):
        yield block


def clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def final_line(message: dict[str, Any]) -> str:
    """A final as `[0:03.2 → 0:05.9] A: text` (the speaker only when labelled)."""
    who = f"{message['speaker']}: " if message.get("speaker") else ""
    return f"[{clock(message['start'])} → {clock(message['end'])}] {who}{message['text']}"
