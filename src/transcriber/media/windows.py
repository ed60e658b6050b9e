"""Pack speech regions into windows of at most 30 s for the engine.

A window is the speech of one or more regions glued together (the silence
between them removed) plus the map back to the file's own time axis. The
`WindowBuilder` keeps only the audio it still needs, so memory is bounded.

The encoder costs the same for every window however much speech it holds, so
windows are packed full: a region that does not fit is cut at one of its inner
pauses (between words), its first part ends this window and the rest opens the
next one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import FRAME, Pause, Region, SpeechDetector

WINDOW_S = 30.0
# A cut must leave at least this much speech in the window it fills, or it is not
# worth the risk of cutting a phrase.
MIN_FILL_S = 2.0
# Among the pauses that fit, look this far back from the latest one for a longer pause:
# the longest pause of the last 10 s is most often the end of a sentence, and Whisper
# misreads the words on both sides of a cut made inside one (docs/performance.md:
# 16.6% -> 13.8% WER on the 6.6-minute file, where a 4 s look-back cut 13 of its 14
# windows inside one of its joined clips). A window is then filled a little less.
CUT_SEARCH_S = 10.0


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

    def span_to_file_time(self, start: float, end: float) -> tuple[float, float]:
        """Map a word's (start, end) in the window to the file's time axis, both within
        the one piece that holds the middle of the word. Word times are estimates, so a
        word may seem to begin just before the piece it was spoken in; mapped edge by
        edge, it would then reach back across the silence cut out between the pieces."""
        offsets = [p[0] for p in self.pieces]
        i = max(0, bisect.bisect_right(offsets, (start + end) / 2) - 1)
        low = offsets[i]
        high = offsets[i + 1] if i + 1 < len(offsets) else max(end, low)
        start = min(max(start, low), high)
        end = min(max(end, start), high)
        at = self.pieces[i][1]
        return round(at + (start - low), 3), round(at + (end - low), 3)

    def slice(self, start: float, end: float) -> SpeechWindow:
        """The part between two window times, still mapped to the file's time axis."""
        a = max(0, int(start * SAMPLE_RATE))
        b = min(len(self.audio), int(end * SAMPLE_RATE))
        if b <= a:
            raise ValueError(f"empty slice {start}..{end} of a {self.duration:.2f} s window")
        t0 = a / SAMPLE_RATE
        pieces = [(0.0, self.to_file_time(t0))]  # the piece the slice starts in
        pieces += [(off - t0, at) for off, at in self.pieces if t0 < off < b / SAMPLE_RATE]
        end_time = self.to_file_time(b / SAMPLE_RATE, is_end=True)
        return SpeechWindow(audio=self.audio[a:b], pieces=tuple(pieces), end_time=end_time)


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
            self.regions.append(Region(r.start, r.end))  # bounds only: kept for the whole file
            rest = self._resume_part(r)
            if rest is None:
                continue
            r = rest
            if self._queued + (r.end - r.start) > limit and self._regions:
                pause = best_cut(r, limit - self._queued)
                if pause is not None:
                    head, r = r.split(pause.at)
                    self._regions.append(head)
                    self._queued += head.end - head.start
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

    def _resume_part(self, r: Region) -> Region | None:
        """The part of `r` after `skip_until`: a resumed run may stop inside a cut region."""
        skip = round((self.skip_until - self.time_offset) * SAMPLE_RATE)
        if r.end - skip < FRAME:  # done, give or take the rounding of a stored time
            return None
        if r.start < skip:
            return r.split(skip)[1]
        return r

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


def best_cut(region: Region, room: int, search_s: float = CUT_SEARCH_S) -> Pause | None:
    """The pause to cut `region` at so that its first part fills `room` samples best.

    Only pauses that leave at least MIN_FILL_S in the window count; among those within
    `search_s` of the last one that fits, the longest pause wins (the later one on a tie), because a
    longer gap is less likely to fall inside a word.
    """
    lo = region.start + int(MIN_FILL_S * SAMPLE_RATE)
    fits = [p for p in region.pauses if lo <= p.at <= region.start + room]
    if not fits:
        return None
    near = fits[-1].at - int(search_s * SAMPLE_RATE)
    return max((p for p in fits if p.at >= near), key=lambda p: (p.frames, p.at))
