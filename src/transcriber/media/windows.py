"""Pack speech regions into windows of at most 30 s for the engine.

A window is the speech of one or more regions glued together (the silence
between them removed) plus the map back to the file's own time axis. The
`WindowBuilder` keeps only the audio it still needs, so memory is bounded.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from transcriber.media.decode import SAMPLE_RATE
from transcriber.media.vad import Region, SpeechDetector

WINDOW_S = 30.0


@dataclass(frozen=True, slots=True)
class SpeechWindow:
    audio: np.ndarray  # float32, 16 kHz, at most WINDOW_S long
    pieces: tuple[tuple[float, float], ...]  # (offset in window, time in file), seconds
    end_time: float  # file time where the window's last piece ends

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def start_time(self) -> float:
        return self.pieces[0][1]

    def to_file_time(self, t: float, is_end: bool = False) -> float:
        """Map a time inside the window to the file's time axis."""
        offsets = [p[0] for p in self.pieces]
        i = (bisect.bisect_left if is_end else bisect.bisect_right)(offsets, t) - 1
        i = max(0, i)
        off, at = self.pieces[i]
        return round(at + (t - off), 3)


class WindowBuilder:
    """Turns streamed audio into speech windows, with or without VAD."""

    def __init__(
        self,
        detector: SpeechDetector | None,
        time_offset: float = 0.0,
        skip_until: float = 0.0,
    ) -> None:
        self.detector = detector
        self.time_offset = time_offset  # file time of sample 0
        self.skip_until = skip_until  # drop speech that ends before this (resume)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # sample index of _buf[0]
        self._total = 0
        self._regions: list[Region] = []
        self._queued = 0  # samples of speech in _regions
        self._next_fixed = 0  # without VAD: where the next fixed window starts
        self.samples_seen = 0
        self.regions: list[Region] = []  # every speech region seen, for diarization

    def feed(self, chunk: np.ndarray) -> Iterator[SpeechWindow]:
        self._buf = np.concatenate([self._buf, chunk]) if len(self._buf) else chunk
        self._total += len(chunk)
        self.samples_seen = self._total
        if self.detector is None:
            regions = self._fixed_regions(final=False)
        else:
            regions = self.detector.feed(chunk)
        yield from self._add(regions, final=False)

    def finish(self) -> Iterator[SpeechWindow]:
        if self.detector is None:
            regions = self._fixed_regions(final=True)
        else:
            regions = self.detector.finish()
        yield from self._add(regions, final=True)

    def _fixed_regions(self, final: bool) -> list[Region]:
        size = int(WINDOW_S * SAMPLE_RATE)
        start = self._next_fixed
        out = []
        while self._total - start >= size or (final and self._total > start):
            end = min(start + size, self._total)
            out.append(Region(start, end))
            start = end
        self._next_fixed = start
        return out

    def _add(self, regions: Iterable[Region], final: bool) -> Iterator[SpeechWindow]:
        limit = int(WINDOW_S * SAMPLE_RATE)
        for r in regions:
            self.regions.append(r)
            if (r.end / SAMPLE_RATE) + self.time_offset <= self.skip_until:
                continue
            if self._queued + (r.end - r.start) > limit and self._regions:
                yield self._emit()
            self._regions.append(r)
            self._queued += r.end - r.start
        if final and self._regions:
            yield self._emit()
        # Keep audio from the earliest region still pending, or from where the
        # next region could still start; everything before is no longer needed.
        if self._regions:
            keep_from = self._regions[0].start
        elif self.detector is not None:
            keep_from = self.detector.earliest_needed()
        else:
            keep_from = self._next_fixed
        self._trim(max(self._buf_start, keep_from))

    def _emit(self) -> SpeechWindow:
        parts, pieces, offset = [], [], 0
        for r in self._regions:
            parts.append(self._buf[r.start - self._buf_start : r.end - self._buf_start])
            pieces.append((offset / SAMPLE_RATE, r.start / SAMPLE_RATE + self.time_offset))
            offset += r.end - r.start
        end_time = self._regions[-1].end / SAMPLE_RATE + self.time_offset
        self._regions, self._queued = [], 0
        audio = np.concatenate(parts).astype(np.float32, copy=False)
        return SpeechWindow(audio=audio, pieces=tuple(pieces), end_time=end_time)

    def _trim(self, keep_from: int) -> None:
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._buf_start = keep_from
