"""Local speakers: segmentation and embeddings of overlapping 10 s chunks, as the audio
streams by.

Chunks start every step (a whole number of segmentation frames, so that the frames of
all chunks fall on one grid): from 2.5 s for short files to 10 s from 2 minutes on
(`step_frames_for`). Only digital silence is skipped: the model finds far and quiet
talkers in meetings that the transcription's VAD leaves out.

Each chunk keeps only what clustering and reconstruction need: its (589, 3) activity
bits and one CAM++ embedding per local speaker with enough speech on its own; the audio
is dropped as soon as the chunk is done, so memory does not grow with the audio held.

An embedding is computed from the fbank frames where that speaker is the only one
talking (the frames where they overlap someone are left out), at most EMBED_S seconds
of them, longest stretches first. A speaker with under MIN_EMBED_S of such clean speech
is embedded from all their frames, overlap included; one with under MIN_EMBED_S in all
gets no embedding. Items are cut to whole BUCKET_FRAMES so that equal lengths batch
together.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from transcriber.diarization import fbank
from transcriber.diarization.campplus import SpeakerEncoder
from transcriber.diarization.segmentation import (
    CHUNK,
    FRAME_SPAN,
    FRAME_STEP,
    FRAMES,
    LOCAL_SPEAKERS,
    Segmenter,
)

STEP_FRAMES = 296  # a chunk every 296 × 270 samples = 5.0 s, when the length is unknown
MIN_STEP_S, MAX_STEP_S = 2.5, 10.0
TARGET_CHUNKS = 12  # short files: at least this many chunks, while steps stay >= MIN_STEP_S
SEG_BATCH = 8  # chunks per segmentation call
EMBED_S = 4.0  # at most this much clean speech per (chunk, speaker) embedding
MIN_EMBED_S = 1.0  # less clean speech than this gives no embedding
BUCKET_FRAMES = 25  # fbank frames (0.25 s): items are cut to a multiple of this
EMBED_BATCH = 16
SILENT = 1e-4  # a chunk whose samples all stay under this is digital silence: skipped
SECONDS_PER_FRAME = FRAME_STEP / fbank.SAMPLE_RATE


@dataclass(slots=True)
class Chunk:
    """One analysed chunk: where it starts, who is active, and their embeddings."""

    first_frame: int  # where its frame 0 lies on the global frame grid
    active: np.ndarray  # (FRAMES, 3) bool
    embeddings: np.ndarray  # (3, 192) float32 unit vectors; NaN rows where none
    clean_s: np.ndarray  # (3,) seconds where each local speaker talks alone


@dataclass(slots=True)
class _Pending:
    index: int
    audio: np.ndarray
    active: np.ndarray | None = None
    embeddings: np.ndarray = field(
        default_factory=lambda: np.full((LOCAL_SPEAKERS, 192), np.nan, np.float32)
    )


def step_frames_for(seconds: float | None) -> int:
    """The chunk step for audio `seconds` long: a short file needs dense chunks to give
    clustering enough local speakers (and costs little); a long one has plenty of
    chunks at any step, and its cost grows with every chunk."""
    if seconds is None:
        return STEP_FRAMES
    step_s = min(MAX_STEP_S, max(MIN_STEP_S, seconds / TARGET_CHUNKS))
    # Never past a chunk's last frame, which would leave frames that no chunk covers.
    return min(FRAMES, max(1, round(step_s / SECONDS_PER_FRAME)))


def frame_centre_s(frame: int) -> float:
    """Seconds from the stream's start to the centre of global frame `frame`."""
    return (frame * FRAME_STEP + FRAME_SPAN / 2) / fbank.SAMPLE_RATE


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the True runs of a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def embedding_frames(frames: np.ndarray) -> np.ndarray:
    """fbank frame indices (within the chunk) for one speaker's chosen segmentation frames:
    the longest stretches first, at most EMBED_S seconds, cut to whole buckets."""
    n_fb = fbank.n_frames(CHUNK)
    # fbank frame j (centre j*160 + 200) falls in segmentation frame round((c - 495.5) / 270)
    centres = np.arange(n_fb) * fbank.SHIFT + fbank.FRAME / 2
    seg_of = np.clip(np.rint((centres - FRAME_SPAN / 2) / FRAME_STEP), 0, FRAMES - 1)
    mask = frames[seg_of.astype(np.int64)]
    runs = sorted(_runs(mask), key=lambda r: r[0] - r[1])
    cap = int(EMBED_S * 100)
    picked: list[tuple[int, int]] = []
    total = 0
    for a, b in runs:
        take = min(b - a, cap - total)
        if take <= 0:
            break
        picked.append((a, a + take))
        total += take
    total -= total % BUCKET_FRAMES
    out = np.concatenate([np.arange(a, b) for a, b in sorted(picked)] or [np.zeros(0, int)])
    return out[:total].astype(np.int64)


def _fbank_rows(audio: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """fbank rows `frames` of `audio`, computed for those rows only: each run of
    consecutive frames from just the samples it needs (the same values as rows of the
    whole chunk's fbank)."""
    parts = []
    for a, b in _runs(np.isin(np.arange(frames.max() + 1), frames)):
        parts.append(fbank.fbank(audio[a * fbank.SHIFT : (b - 1) * fbank.SHIFT + fbank.FRAME]))
    return np.concatenate(parts)


class LocalSpeakers:
    """Feed the 16 kHz stream; get the analysed chunks back from `finish`."""

    def __init__(
        self, segmenter: Segmenter, encoder: SpeakerEncoder, step_frames: int = STEP_FRAMES
    ) -> None:
        self.step_frames = step_frames
        self.segmenter, self.encoder = segmenter, encoder
        self.chunks: list[Chunk] = []
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream sample of _buf[0]
        self._next = 0  # index of the next chunk to cut
        self._queue: list[_Pending] = []
        self._seen = 0  # samples fed

    def feed(self, audio: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, audio]) if len(self._buf) else audio
        self._seen += len(audio)
        while self._cut(final=False):
            pass

    def finish(self) -> list[Chunk]:
        while self._cut(final=True):
            pass
        self._flush()
        return self.chunks

    def _cut(self, final: bool) -> bool:
        step = self.step_frames * FRAME_STEP
        start = self._next * step
        end = start + CHUNK
        if start >= self._seen or (not final and self._seen < end):
            return False
        if final and self._next > 0 and start + CHUNK - step >= self._seen:
            return False  # the previous chunk already reached the end
        a = start - self._buf_start
        audio = self._buf[a : a + CHUNK]
        if len(audio) < CHUNK:
            audio = np.pad(audio, (0, CHUNK - len(audio)))
        if np.abs(audio).max(initial=0.0) >= SILENT:
            self._queue.append(_Pending(self._next, audio.copy()))
            if len(self._queue) >= SEG_BATCH:
                self._flush()
        self._next += 1
        drop = self._next * step - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._buf_start += drop
        return True

    def _flush(self) -> None:
        if not self._queue:
            return
        pending, self._queue = self._queue, []
        active = self.segmenter(np.stack([p.audio for p in pending]))
        items: list[tuple[_Pending, int, np.ndarray]] = []
        clean_s = []
        for p, act in zip(pending, active, strict=True):
            p.active = act
            clean = act & (act.sum(axis=1, keepdims=True) == 1)
            clean_s.append(clean.sum(axis=0) * SECONDS_PER_FRAME)
            for s in range(LOCAL_SPEAKERS):
                # Overlapped frames only when there is too little clean speech (pyannote's
                # fallback): a voice heard only over another still gets a place.
                use = (
                    clean[:, s]
                    if clean[:, s].sum() * SECONDS_PER_FRAME >= MIN_EMBED_S
                    else act[:, s]
                )
                if use.sum() * SECONDS_PER_FRAME < MIN_EMBED_S:
                    continue
                frames = embedding_frames(use)
                if len(frames) < BUCKET_FRAMES * 2:
                    continue
                items.append((p, s, fbank.normalise(_fbank_rows(p.audio, frames))))
        self._embed(items)
        for p, seconds in zip(pending, clean_s, strict=True):
            assert p.active is not None
            self.chunks.append(Chunk(p.index * self.step_frames, p.active, p.embeddings, seconds))

    def _embed(self, items: Iterable[tuple[_Pending, int, np.ndarray]]) -> None:
        by_length = sorted(items, key=lambda it: len(it[2]))
        for _, group in itertools.groupby(by_length, key=lambda it: len(it[2])):
            batch = list(group)
            for i in range(0, len(batch), EMBED_BATCH):
                part = batch[i : i + EMBED_BATCH]
                vectors = self.encoder.embed(np.stack([it[2] for it in part]))
                for (p, s, _), v in zip(part, vectors, strict=True):
                    p.embeddings[s] = v
