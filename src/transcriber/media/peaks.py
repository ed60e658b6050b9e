"""Loudness peaks of a recording, for the web page's waveform.

Measured once, from the audio the pipeline decodes anyway (ten peaks a second, one
byte each on a -60…0 dBFS scale: 36 KB an hour), stored beside the transcript, and
served shrunk to the width the page draws (`shrink`).
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from transcriber.domain import Clip
from transcriber.media.frames import SAMPLE_RATE

PER_SECOND = 10
BUCKET = SAMPLE_RATE // PER_SECOND
FLOOR_DB = -60.0
MAX_WIDTH = 4000


class PeakMeter:
    """Peaks of the audio fed to it, by position: feeding several channels of the same
    stretch keeps the loudest."""

    def __init__(self, start: float = 0.0) -> None:
        self.start = start  # file seconds of sample 0
        self._peaks = np.zeros(0, np.float32)
        self._length = 0  # buckets fed

    def feed(self, chunk: np.ndarray, at: int) -> None:
        """`chunk` of 16 kHz samples whose first is sample `at` of the stream."""
        if not len(chunk):
            return
        first, last = at // BUCKET, (at + len(chunk) - 1) // BUCKET
        if last >= len(self._peaks):
            grown = np.zeros(max(last + 1, 2 * len(self._peaks)), np.float32)
            grown[: len(self._peaks)] = self._peaks
            self._peaks = grown
        pad = at - first * BUCKET
        block = np.abs(np.concatenate([np.zeros(pad, np.float32), chunk]))
        rest = (-len(block)) % BUCKET
        block = np.concatenate([block, np.zeros(rest, np.float32)]).reshape(-1, BUCKET)
        span = slice(first, first + len(block))
        self._peaks[span] = np.maximum(self._peaks[span], block.max(axis=1))
        self._length = max(self._length, last + 1)

    def levels(self) -> np.ndarray:
        """Each tenth of a second's peak as 0…255 on a -60…0 dBFS scale."""
        peaks = self._peaks[: self._length]
        db = 20.0 * np.log10(np.maximum(peaks, 1e-6))
        scaled = np.clip((db - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0) * 255.0
        return np.round(scaled).astype(np.uint8)

    def to_json(self) -> bytes:
        data = base64.b64encode(self.levels().tobytes()).decode()
        doc = {"start": round(self.start, 3), "per_second": PER_SECOND, "levels": data}
        return json.dumps(doc).encode()


def shrink(stored: bytes, width: int) -> dict[str, Any]:
    """The stored peaks as at most `width` numbers 0…100 (each the loudest it covers),
    with the file seconds they start at and span."""
    doc = json.loads(stored)
    levels = np.frombuffer(base64.b64decode(doc["levels"]), np.uint8)
    per_second = int(doc.get("per_second", PER_SECOND))
    width = max(1, min(width, MAX_WIDTH))
    if len(levels) > width:
        step = math.ceil(len(levels) / width)
        padded = np.concatenate([levels, np.zeros((-len(levels)) % step, np.uint8)])
        levels = padded.reshape(-1, step).max(axis=1)
        per_second_out = per_second / step
    else:
        per_second_out = float(per_second)
    return {
        "start": float(doc.get("start", 0.0)),
        "seconds_per_peak": round(1.0 / per_second_out, 4),
        "peaks": [round(int(v) * 100 / 255) for v in levels],
    }


def measure(path: Path, start_offset: float, clip: Clip | None = None) -> PeakMeter:
    """Peaks of a file's audio (the part in `clip`), decoding it: for transcripts made
    before peaks were kept."""
    from transcriber.media.decode import stream_audio

    clip = clip or Clip()
    meter = PeakMeter(start_offset + clip.start)
    at = 0
    for chunk in stream_audio(path, clip=clip):
        meter.feed(chunk, at)
        at += len(chunk)
    return meter
