"""Speaker embeddings of sliding windows over speech, computed as the audio streams by.

Only the small embedding matrix is kept (one 256-float vector per hop), never the
waveform: speech pieces are embedded as soon as they are complete, and the raw
stream buffer is trimmed to a bounded look-back.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from transcriber.diarization import encoder, features
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import Region
from transcriber.media.windows import SpeechWindow

WINDOW_FRAMES = 150  # 1.5 s of 10 ms mel frames per embedding
HOP_FRAMES = 75  # a new embedding every 0.75 s
MIN_FRAMES = 40  # pieces shorter than 0.4 s are not embedded
BATCH = 64  # windows per encoder call
LOOKBACK_S = 75.0  # VAD emits a region at most max_region_s + silence + pad after it began
PIECE_S = 30  # longer speech is embedded in parts of this length, as it arrives


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One row per window: its d-vector, the file-time span it speaks for, its piece."""

    vectors: np.ndarray  # (n, 256) float32, unit length
    spans: np.ndarray  # (n, 2) float64 file seconds; consecutive spans of a piece tile it
    pieces: np.ndarray  # (n,) int: windows of one contiguous speech piece share the number
    full: np.ndarray  # (n,) bool: a full-length window (short pieces give shorter ones)

    @staticmethod
    def empty() -> Embeddings:
        return Embeddings(
            np.zeros((0, encoder.HIDDEN), np.float32),
            np.zeros((0, 2)),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
        )


def window_starts(n_frames: int, width: int = WINDOW_FRAMES, hop: int = HOP_FRAMES) -> list[int]:
    """Start frames of windows tiling `n_frames`, the last one flush with the end."""
    if n_frames <= width:
        return [0]
    starts = list(range(0, n_frames - width + 1, hop))
    if starts[-1] != n_frames - width:
        starts.append(n_frames - width)
    return starts


class SpeakerEmbedder:
    """Collect embeddings from speech pieces, from engine windows, or from a raw stream."""

    def __init__(self, time_offset: float = 0.0, weights: encoder.EncoderWeights | None = None):
        self.time_offset = time_offset  # file time of stream sample 0 (for `feed`)
        self._weights = weights
        self._pending: dict[int, list[np.ndarray]] = {}  # frames → mel windows awaiting a batch
        self._meta: dict[int, list[tuple[float, float, int]]] = {}
        self._vectors: list[np.ndarray] = []
        self._rows: list[tuple[float, float, int, bool]] = []
        self._piece = 0
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream sample index of _buf[0]
        self._queued: list[Region] = []

    def add_speech(self, audio: np.ndarray, start: float) -> None:
        """Embed one contiguous piece of speech whose first sample lies at file time `start`."""
        step = PIECE_S * SAMPLE_RATE
        for i in range(0, len(audio), step):
            self._add_part(audio[i : i + step], start + i / SAMPLE_RATE)
        self._piece += 1

    def _add_part(self, audio: np.ndarray, start: float) -> None:
        mel = features.mel_spectrogram(audio)
        n = min(len(mel), len(audio) // features.HOP)
        if n < MIN_FRAMES:
            return
        starts = window_starts(n)
        width = min(n, WINDOW_FRAMES)
        centres = [s + width / 2 for s in starts]
        cuts = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(centres)] + [n]
        for i, s in enumerate(starts):
            self._pending.setdefault(width, []).append(mel[s : s + width])
            span = (start + cuts[i] / 100, start + cuts[i + 1] / 100, self._piece)
            self._meta.setdefault(width, []).append(span)
            if len(self._pending[width]) >= BATCH:
                self._flush(width)

    def add_window(self, window: SpeechWindow) -> None:
        """Embed the speech of one engine window, piece by piece."""
        offsets = [p[0] for p in window.pieces] + [window.duration]
        for (off, at), end in zip(window.pieces, offsets[1:], strict=False):
            a, b = round(off * SAMPLE_RATE), round(end * SAMPLE_RATE)
            self.add_speech(window.audio[a:b], at)

    def feed(self, chunk: np.ndarray, regions: Iterable[Region] = ()) -> None:
        """Stream audio in; `regions` are speech regions (stream samples) found so far."""
        self._buf = np.concatenate([self._buf, chunk]) if len(self._buf) else chunk
        self._queued.extend(regions)
        self._take(final=False)

    def finish(self, regions: Iterable[Region] = ()) -> Embeddings:
        self._queued.extend(regions)
        self._take(final=True)
        for width in list(self._pending):
            self._flush(width)
        if not self._vectors:
            return Embeddings.empty()
        order = np.argsort([r[0] for r in self._rows], kind="stable")
        rows = [self._rows[i] for i in order]
        return Embeddings(
            vectors=np.concatenate(self._vectors)[order],
            spans=np.array([(r[0], r[1]) for r in rows], dtype=np.float64).reshape(-1, 2),
            pieces=np.array([r[2] for r in rows], dtype=np.int64),
            full=np.array([r[3] for r in rows], dtype=bool),
        )

    def _take(self, final: bool) -> None:
        end = self._buf_start + len(self._buf)
        part = PIECE_S * SAMPLE_RATE
        while self._queued:
            r = self._queued[0]
            start = max(r.start, self._buf_start)
            if r.end <= end or final:
                self._queued.pop(0)
                self._cut(start, min(r.end, end))
                self._piece += 1
            elif end - start >= part:  # a long region: embed what has come, keep the rest
                self._cut(start, start + part)
                self._queued[0] = Region(start + part, r.end)
            else:
                break
        keep = end - int(LOOKBACK_S * SAMPLE_RATE)
        self._trim(min(keep, self._queued[0].start) if self._queued else keep)

    def _cut(self, start: int, end: int) -> None:
        a, b = start - self._buf_start, end - self._buf_start
        if b > a:
            self._add_part(self._buf[a:b], self.time_offset + start / SAMPLE_RATE)
        self._trim(end)

    def _trim(self, keep_from: int) -> None:
        drop = min(max(0, keep_from - self._buf_start), len(self._buf))
        if drop:
            self._buf = self._buf[drop:].copy()
            self._buf_start += drop

    def _flush(self, width: int) -> None:
        mels, meta = self._pending.pop(width, []), self._meta.pop(width, [])
        if not mels:
            return
        batch = features.normalise_level(np.stack(mels))
        self._vectors.append(encoder.embed(batch, self._weights))
        self._rows.extend((s, e, p, width == WINDOW_FRAMES) for s, e, p in meta)
