"""Global speakers from local ones: agglomerative clustering of (chunk, local speaker)
embeddings, then a one-to-one assignment inside each chunk.

1. The training set is every local speaker with at least MIN_TRAIN_S of clean speech
   in its chunk (its embedding is the most reliable).
2. Centroid-linkage agglomerative clustering of the unit embeddings: the two clusters
   whose centroids are closest (Euclidean) merge, until the closest pair is further apart
   than THRESHOLD, or until the count the caller asked for is reached.
3. A cluster holding under MIN_SPEAKER_S of clean speech in all is not a speaker of its
   own: its members go to the nearest large cluster. (People who only say "yes" are
   heard, but not counted.)
4. Every embedded local speaker goes to a cluster by cosine to the centroids, one local
   speaker per cluster in a chunk (the Hungarian method), so two voices heard at once
   stay two speakers. A local speaker left over (more local voices than clusters) still
   joins its nearest cluster if it hardly ever talks over the one that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transcriber.diarization.der import best_mapping
from transcriber.diarization.local import Chunk
from transcriber.domain import SpeakerCount

THRESHOLD = 0.9  # Euclidean distance between unit-vector centroids (cosine ≈ 0.6)
MIN_TRAIN_S = 2.0
MIN_SPEAKER_S = 3.0
MAX_FIT = 1200  # training embeddings clustered; more are thinned evenly
DEFAULT_MAX_SPEAKERS = 12
UNASSIGNED = -2
SHARE_OVERLAP = 0.1  # of a left-out local speaker's frames spent talking over the holder
SAME_VOICE = 1 - THRESHOLD**2 / 2  # cosine to a centroid as close as clustering merges


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return out


def agglomerate(
    x: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    min_k: int = 1,
    max_k: int | None = None,
) -> np.ndarray:
    """Centroid-linkage clustering of unit vectors (weighted by `weights`, e.g. seconds of
    speech): merges stop at `threshold` unless more than `max_k` clusters remain, and never
    go below `min_k`. Labels 0..k-1."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    sums = x.astype(np.float64) * weights[:, None]
    mass = weights.astype(np.float64).copy()
    alive = np.ones(n, bool)
    owner = np.arange(n)
    cent = sums / mass[:, None]
    sq = (cent**2).sum(1)
    d = np.sqrt(np.maximum(0.0, sq[:, None] + sq[None, :] - 2 * cent @ cent.T))
    np.fill_diagonal(d, np.inf)
    k = n
    while k > max(1, min_k):
        flat = int(np.argmin(d))
        i, j = divmod(flat, n)
        if d[i, j] > threshold and (max_k is None or k <= max_k):
            break
        sums[i] += sums[j]
        mass[i] += mass[j]
        cent[i] = sums[i] / mass[i]
        alive[j] = False
        owner[owner == j] = i
        d[j, :] = np.inf
        d[:, j] = np.inf
        row = np.sqrt(np.maximum(0.0, ((cent - cent[i]) ** 2).sum(-1)))
        row[~alive] = np.inf
        row[i] = np.inf
        d[i, :] = row
        d[:, i] = row
        k -= 1
    _, labels = np.unique(owner, return_inverse=True)
    return labels.astype(np.int64)


def _fold_small(labels: np.ndarray, x: np.ndarray, seconds: np.ndarray, keep: int) -> np.ndarray:
    """Give the members of clusters under MIN_SPEAKER_S to the nearest large one, keeping
    at least `keep` clusters (the largest)."""
    k = int(labels.max()) + 1
    total = np.bincount(labels, weights=seconds, minlength=k)
    order = np.argsort(-total)
    large = [c for c in order if total[c] >= MIN_SPEAKER_S]
    for c in order:
        if len(large) >= min(keep, k):
            break
        if c not in large:
            large.append(c)
    if not large:
        large = [int(order[0])]
    cents = _unit(np.array([x[labels == c].mean(0) for c in large]))
    nearest = np.array(large)[np.argmax(x @ cents.T, axis=1)]
    out = np.where(np.isin(labels, large), labels, nearest)
    _, relabelled = np.unique(out, return_inverse=True)
    return relabelled.astype(np.int64)


def cluster_chunks(
    chunks: Sequence[Chunk], count: SpeakerCount | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(chunks, 3) global speaker of each local speaker (UNASSIGNED where none), and the
    (k, 192) unit centroids."""
    count = count or SpeakerCount(1, None)
    n = len(chunks)
    hard = np.full((n, 3), UNASSIGNED, np.int64)
    if n == 0:
        return hard, np.zeros((0, 192), np.float32)
    emb = np.stack([c.embeddings for c in chunks])  # (n, 3, 192)
    seconds = np.stack([c.clean_s for c in chunks])
    valid = ~np.isnan(emb).any(axis=2)
    train = valid & (seconds >= MIN_TRAIN_S)
    if not train.any():
        train = valid
    if not train.any():
        # Nobody talks long enough alone to be told apart: all the speech is one speaker.
        active = np.stack([c.active.any(axis=0) for c in chunks])
        hard[active] = 0
        return hard, np.zeros((1, 192), np.float32)
    ci, si = np.nonzero(train)
    step = max(1, -(-len(ci) // MAX_FIT))
    ci, si = ci[::step], si[::step]
    x = emb[ci, si]
    w = seconds[ci, si]
    high = count.high if count.high is not None else max(count.low, DEFAULT_MAX_SPEAKERS)
    labels = agglomerate(x, w, THRESHOLD, min_k=count.low, max_k=high)
    labels = _fold_small(labels, x, w * step, keep=count.low)
    k = int(labels.max()) + 1
    centroids = _unit(np.array([x[labels == c].mean(0) for c in range(k)]))
    for c in range(n):
        rows = np.flatnonzero(valid[c])
        if len(rows) == 0:
            continue
        sim = emb[c, rows] @ centroids.T
        for r, col in best_mapping(sim + 2.0):  # + 2: every pairing beats none
            hard[c, rows[r]] = col
        _share_taken(chunks[c].active, hard[c], rows, sim)
    return hard, centroids.astype(np.float32)


def _share_taken(active: np.ndarray, hard: np.ndarray, rows: np.ndarray, sim: np.ndarray) -> None:
    """Give a local speaker the one-to-one assignment left out (a chunk with more local
    speakers than there are global ones) its nearest speaker after all, when it hardly
    ever talks at the same time as the local speaker holding that one, and its voice is
    as close to that speaker's as clustering would merge: then the
    segmentation model heard one voice as two (a change of level or of microphone), and
    leaving it out would drop its speech from the turns. Voices heard at once stay out."""
    for r, local in enumerate(rows):
        if hard[local] != UNASSIGNED:
            continue
        best = int(np.argmax(sim[r]))
        if sim[r, best] < SAME_VOICE:
            continue
        holders = np.flatnonzero(hard == best)
        mine = active[:, local]
        together = (active[:, holders].any(axis=1) & mine).sum()
        if mine.any() and together <= SHARE_OVERLAP * mine.sum():
            hard[local] = best
