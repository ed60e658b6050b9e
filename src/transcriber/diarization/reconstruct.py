"""From clustered chunks back to one timeline, where two speakers may talk at once.

On the global frame grid (one frame every 16.9 ms), each global speaker's activity is
summed over the chunks that cover a frame (a local speaker counts for the global
speaker it was assigned to), and the number of people talking is the chunks' mean
count of active local speakers, rounded. Each frame then goes to that many speakers,
the most active first (pyannote's reconstruction). A local speaker too short to embed
joins the global speaker it is most often heard with in the other chunks, unless that
speaker is already someone else in its own chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transcriber.diarization.clustering import UNASSIGNED
from transcriber.diarization.local import Chunk, frame_centre_s
from transcriber.diarization.segmentation import FRAME_STEP, FRAMES
from transcriber.diarization.timeline import Turn, label_name

HALF_FRAME_S = FRAME_STEP / 2 / 16_000
MIN_GAP_S = 0.1  # a speaker's pauses shorter than this are closed


def _adopt_orphans(chunks: Sequence[Chunk], hard: np.ndarray, act: np.ndarray) -> np.ndarray:
    hard = hard.copy()
    for c, chunk in enumerate(chunks):
        f0 = chunk.first_frame
        for s in np.flatnonzero((hard[c] == UNASSIGNED) & chunk.active.any(axis=0)):
            on = chunk.active[:, s]
            score = act[f0 : f0 + FRAMES][on].sum(axis=0)
            score[hard[c][hard[c] >= 0]] = 0  # already someone else in this chunk
            if score.max() > 0:
                hard[c, s] = int(np.argmax(score))
    return hard


def _accumulate(
    chunks: Sequence[Chunk], hard: np.ndarray, k: int, n_frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    act = np.zeros((n_frames, k), np.float32)
    speaking = np.zeros(n_frames, np.float32)
    cover = np.zeros(n_frames, np.float32)
    for c, chunk in enumerate(chunks):
        f0 = chunk.first_frame
        span = slice(f0, f0 + FRAMES)
        for g in np.unique(hard[c][hard[c] >= 0]):
            act[span, g] += chunk.active[:, hard[c] == g].any(axis=1)
        speaking[span] += chunk.active.sum(axis=1)
        cover[span] += 1
    return act, speaking, cover


def binary_activity(chunks: Sequence[Chunk], hard: np.ndarray, k: int) -> np.ndarray:
    """(frames, k) bool: who talks in each global frame."""
    if not chunks or k == 0:
        return np.zeros((0, k), bool)
    n_frames = max(c.first_frame for c in chunks) + FRAMES
    act, _, _ = _accumulate(chunks, hard, k, n_frames)
    hard = _adopt_orphans(chunks, hard, act)
    act, speaking, cover = _accumulate(chunks, hard, k, n_frames)
    count = np.rint(speaking / np.maximum(cover, 1)).astype(np.int64)
    rank = np.argsort(np.argsort(-act, axis=1, kind="stable"), axis=1, kind="stable")
    out: np.ndarray = (rank < count[:, None]) & (act > 0)
    return out


def to_turns(binary: np.ndarray, time_offset: float = 0.0) -> list[Turn]:
    """Turns of each column's runs; names A, B, … by first appearance."""
    raw: list[tuple[float, float, int]] = []
    for g in range(binary.shape[1]):
        col = np.concatenate([[0], binary[:, g].astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(col))
        spans: list[list[float]] = []
        for a, b in zip(edges[0::2], edges[1::2], strict=True):
            start = frame_centre_s(int(a)) - HALF_FRAME_S
            end = frame_centre_s(int(b) - 1) + HALF_FRAME_S
            if spans and start - spans[-1][1] < MIN_GAP_S:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        raw += [(s, e, g) for s, e in spans]
    raw.sort()
    names: dict[int, str] = {}
    for _, _, g in raw:
        names.setdefault(g, label_name(len(names)))
    return [Turn(round(s + time_offset, 3), round(e + time_offset, 3), names[g]) for s, e, g in raw]
