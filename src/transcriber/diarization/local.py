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

The same CAM++ pass also pools shorter windows (WINDOW_S long, every WINDOW_HOP_S) of
each clean-speech embedding, for almost nothing: the network runs once, only the pooling
is repeated. One local speaker of the segmentation model sometimes holds two similar
voices for a whole chunk; its windows let clustering (`refine.py`) part them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from transcriber.diarization import fbank
from transcriber.diarization.campplus import SpeakerEncoder, trunk_frames
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
EMBED_BATCH = 8  # items per CAM++ call (calls run side by side on the encoder's lanes)
WINDOW_S, WINDOW_HOP_S = 1.5, 0.5  # window embeddings inside each clean-speech embedding
REST_S = 3.0  # at most this much of the rest of a speaker's clean speech is windowed
TRUNK_S = 2 * fbank.SHIFT / fbank.SAMPLE_RATE  # CAM++ trunk frames are 20 ms apart
SILENT = 1e-4  # a chunk whose samples all stay under this is digital silence: skipped
SECONDS_PER_FRAME = FRAME_STEP / fbank.SAMPLE_RATE


@dataclass(slots=True)
class Chunk:
    """One analysed chunk: where it starts, who is active, and their embeddings."""

    first_frame: int  # where its frame 0 lies on the global frame grid
    active: np.ndarray  # (FRAMES, 3) bool
    embeddings: np.ndarray  # (3, 192) float32 unit vectors; NaN rows where none
    clean_s: np.ndarray  # (3,) seconds where each local speaker talks alone
    # Window embeddings of the local speakers' clean speech (float16 unit vectors), the
    # local speaker of each, the chunk frame at its centre, and the seconds of the
    # speaker's clean speech it stands for (its share of clean_s).
    windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 192), np.float16))
    window_speaker: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    window_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    window_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass(slots=True)
class _Pending:
    index: int
    audio: np.ndarray
    active: np.ndarray | None = None
    embeddings: np.ndarray = field(
        default_factory=lambda: np.full((LOCAL_SPEAKERS, 192), np.nan, np.float32)
    )
    windows: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)


def step_frames_for(seconds: float | None, step_s: float | None = None) -> int:
    """The chunk step for audio `seconds` long: a short file needs dense chunks to give
    clustering enough local speakers (and costs little); a long one has plenty of
    chunks at any step, and its cost grows with every chunk. `step_s` (seconds, kept
    within MIN_STEP_S-MAX_STEP_S) asks for a fixed step instead."""
    if step_s:
        step_s = min(MAX_STEP_S, max(MIN_STEP_S, step_s))
    elif seconds is None:
        return STEP_FRAMES
    else:
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


def embedding_frames(
    frames: np.ndarray, cap_s: float = EMBED_S, taken: np.ndarray | None = None
) -> np.ndarray:
    """fbank frame indices (within the chunk) for one speaker's chosen segmentation frames:
    the longest stretches first, at most `cap_s` seconds, cut to whole buckets; fbank
    frames in `taken` are left out."""
    n_fb = fbank.n_frames(CHUNK)
    # fbank frame j (centre j*160 + 200) falls in segmentation frame round((c - 495.5) / 270)
    centres = np.arange(n_fb) * fbank.SHIFT + fbank.FRAME / 2
    seg_of = np.clip(np.rint((centres - FRAME_SPAN / 2) / FRAME_STEP), 0, FRAMES - 1)
    mask = frames[seg_of.astype(np.int64)]
    if taken is not None:
        mask[taken] = False
    runs = sorted(_runs(mask), key=lambda r: r[0] - r[1])
    cap = int(cap_s * 100)
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


def window_rows(n_trunk: int) -> np.ndarray:
    """(windows, n_trunk) 0/1 pooling weights: WINDOW_S windows every WINDOW_HOP_S over
    `n_trunk` CAM++ trunk frames (none when it is shorter than one window)."""
    width, hop = round(WINDOW_S / TRUNK_S), round(WINDOW_HOP_S / TRUNK_S)
    starts = range(0, n_trunk - width + 1, hop)
    rows = np.zeros((len(starts), n_trunk), np.float32)
    for i, a in enumerate(starts):
        rows[i, a : a + width] = 1.0
    return rows


def thinned(frames: np.ndarray, cap_s: float = REST_S) -> np.ndarray:
    """At most `cap_s` seconds of `frames` (fbank frame indices): WINDOW_S pieces spread
    evenly over them, joined; all of them when they are no longer than that."""
    width, cap = round(WINDOW_S * 100), round(cap_s * 100)
    if len(frames) <= cap:
        return frames
    n = max(1, cap // width)
    starts = [round((i + 0.5) * len(frames) / n - width / 2) for i in range(n)]
    return np.concatenate([frames[a : a + width] for a in starts])


def seg_frame_of(fb_frames: np.ndarray) -> np.ndarray:
    """The segmentation frame (within the chunk) where each fbank frame's centre falls."""
    centres = fb_frames * fbank.SHIFT + fbank.FRAME / 2
    out: np.ndarray = np.clip(np.rint((centres - FRAME_SPAN / 2) / FRAME_STEP), 0, FRAMES - 1)
    return out.astype(np.int64)


def _fbank_rows(audio: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """fbank rows `frames` of `audio`, computed for those rows only: each run of
    consecutive frames from just the samples it needs (the same values as rows of the
    whole chunk's fbank)."""
    parts = []
    for a, b in _runs(np.isin(np.arange(frames.max() + 1), frames)):
        parts.append(fbank.fbank(audio[a * fbank.SHIFT : (b - 1) * fbank.SHIFT + fbank.FRAME]))
    return np.concatenate(parts)


def _chunk(p: _Pending, step_frames: int, clean_s: np.ndarray) -> Chunk:
    assert p.active is not None
    chunk = Chunk(p.index * step_frames, p.active, p.embeddings, clean_s)
    if p.windows:
        speaker = np.concatenate([np.full(len(v), s) for s, v, _ in p.windows])
        counts = np.bincount(speaker, minlength=LOCAL_SPEAKERS)
        chunk.windows = np.concatenate([v for _, v, _ in p.windows]).astype(np.float16)
        chunk.window_speaker = speaker.astype(np.int8)
        chunk.window_frame = np.concatenate([f for _, _, f in p.windows]).astype(np.int16)
        chunk.window_s = (clean_s[speaker] / counts[speaker]).astype(np.float32)
    return chunk


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
        items: list[tuple[_Pending, int, np.ndarray, np.ndarray | None]] = []
        clean_s = []
        for p, act in zip(pending, active, strict=True):
            p.active = act
            clean = act & (act.sum(axis=1, keepdims=True) == 1)
            clean_s.append(clean.sum(axis=0) * SECONDS_PER_FRAME)
            for s in range(LOCAL_SPEAKERS):
                # Overlapped frames only when there is too little clean speech (pyannote's
                # fallback): a voice heard only over another still gets a place.
                alone = clean[:, s].sum() * SECONDS_PER_FRAME >= MIN_EMBED_S
                use = clean[:, s] if alone else act[:, s]
                if use.sum() * SECONDS_PER_FRAME < MIN_EMBED_S:
                    continue
                frames = embedding_frames(use)
                if len(frames) < BUCKET_FRAMES * 2:
                    continue
                feats = fbank.normalise(_fbank_rows(p.audio, frames))
                # Windows only of clean speech: an overlapped stretch holds two voices.
                items.append((p, s, feats, frames if alone else None))
                if alone:
                    # A few windows of the rest of the clean speech, spread evenly (no embedding).
                    rest = embedding_frames(use, CHUNK / fbank.SAMPLE_RATE, frames)
                    rest = thinned(rest)
                    if len(rest) >= round(WINDOW_S * 100):
                        feats = fbank.normalise(_fbank_rows(p.audio, rest))
                        items.append((p, -1 - s, feats, rest))
        self._embed(items)
        for p, seconds in zip(pending, clean_s, strict=True):
            assert p.active is not None
            self.chunks.append(_chunk(p, self.step_frames, seconds))

    def _embed(self, items: Iterable[tuple[_Pending, int, np.ndarray, np.ndarray | None]]) -> None:
        by_length = sorted(items, key=lambda it: len(it[2]))
        parts: list[
            tuple[list[tuple[_Pending, int, np.ndarray, np.ndarray | None]], np.ndarray]
        ] = []
        for length, group in itertools.groupby(by_length, key=lambda it: len(it[2])):
            batch = list(group)
            n_trunk = trunk_frames(length)
            windows = window_rows(n_trunk)
            weights = np.concatenate([np.ones((1, n_trunk), np.float32), windows])
            parts += [
                (batch[i : i + EMBED_BATCH], weights) for i in range(0, len(batch), EMBED_BATCH)
            ]
        # The calls are independent: the encoder runs them side by side on its lanes.
        raws = self.encoder.pooled_all(
            [
                (np.stack([it[2] for it in part]), np.broadcast_to(w, (len(part), *w.shape)))
                for part, w in parts
            ]
        )
        for (part, weights), raw in zip(parts, raws, strict=True):
            windows = weights[1:]
            unit = raw / np.maximum(np.linalg.norm(raw, axis=2, keepdims=True), 1e-8)
            for (p, s, _, frames), v in zip(part, unit, strict=True):
                if s >= 0:
                    p.embeddings[s] = v[0]
                else:
                    s = -1 - s  # the rest of speaker s's clean speech: windows only
                if frames is not None and len(windows):
                    # trunk frame t reads fbank frames 2t and 2t + 1 of the picked ones
                    centre = windows.argmax(axis=1) + int(windows[0].sum()) // 2
                    fb = frames[np.minimum(2 * centre, len(frames) - 1)]
                    p.windows.append((s, v[1:], seg_frame_of(fb)))
