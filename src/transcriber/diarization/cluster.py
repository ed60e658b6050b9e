"""Group window embeddings by speaker and decide how many speakers there are.

Short-window d-vectors are noisy, so clusters are found on smoothed vectors (each
window averaged with up to SMOOTH neighbours on each side in its speech piece, ≈ 4.5 s
of speech) with the file's mean vector removed, which takes out what every window
shares (room, microphone). Spherical k-means is run for k = 2, 3, …; a split into k
clusters is kept only if every pair of clusters passes both tests:

- different voices: the cosine between the two clusters' mean d-vectors is below
  SAME_VOICE (one voice split in two stays above it on our data);
- they take turns: in time order the two clusters alternate at least once more
  (three or more runs), unless the voices are clearly distinct (below DISTINCT_VOICE).
  One voice that drifts (another take, another room) splits into two contiguous
  blocks; people in a conversation come back to each other.

Every cluster also needs MIN_CLUSTER windows. The first k that fails ends the search.
"""

from __future__ import annotations

import numpy as np

from transcriber.diarization.timeline import smooth

SMOOTH = 2
SAME_VOICE = 0.895
DISTINCT_VOICE = 0.75
MIN_CLUSTER = 3  # windows (≈ 2.3 s of speech) a speaker needs to be counted
MAX_FIT = 1500  # windows used to fit clusters; the others are assigned to the nearest
DEFAULT_MAX_SPEAKERS = 8


def _unit(x: np.ndarray) -> np.ndarray:
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return unit


def smooth_vectors(vectors: np.ndarray, pieces: np.ndarray, radius: int = SMOOTH) -> np.ndarray:
    """Each vector averaged with up to `radius` neighbours on each side in its own piece."""
    total = vectors.astype(np.float64).copy()
    for shift in range(1, radius + 1):
        same = pieces[shift:] == pieces[:-shift]
        total[shift:][same] += vectors[:-shift][same]
        total[:-shift][same] += vectors[shift:][same]
    return _unit(total).astype(np.float32)


def kmeans(x: np.ndarray, k: int, restarts: int = 8, seed: int = 0) -> np.ndarray:
    """Spherical k-means (cosine), k-means++ seeding, best of `restarts`; labels 0..k-1."""
    n = len(x)
    if k <= 1 or n <= k:
        return np.zeros(n, np.int64) if k <= 1 else np.arange(n, dtype=np.int64) % k
    rng = np.random.default_rng(seed)
    best, best_score = np.zeros(n, np.int64), -np.inf
    for _ in range(restarts):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            far = np.maximum(0.0, 1.0 - np.max(x @ np.array(centres).T, axis=1))
            p = far / far.sum() if far.sum() > 0 else np.full(n, 1.0 / n)
            centres.append(x[rng.choice(n, p=p)])
        c = np.array(centres)
        labels = np.argmax(x @ c.T, axis=1)
        for _ in range(100):
            sums = np.array([x[labels == j].sum(0) for j in range(k)])
            c = np.where(np.bincount(labels, minlength=k)[:, None] > 0, _unit(sums), c)
            new = np.argmax(x @ c.T, axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
        score = float(np.sum(x * c[labels]))
        if score > best_score:
            best, best_score = labels, score
    return best


def centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = int(labels.max()) + 1 if len(labels) else 0
    return _unit(np.array([vectors[labels == j].mean(0) for j in range(k)]).reshape(k, -1))


def _take_turns(labels: np.ndarray, a: int, b: int) -> bool:
    seq = labels[(labels == a) | (labels == b)]
    return int(np.count_nonzero(seq[1:] != seq[:-1])) >= 2


def split_is_real(vectors: np.ndarray, labels: np.ndarray, pieces: np.ndarray) -> bool:
    """Do the clusters of `labels` (windows in time order) look like different people?"""
    k = int(labels.max()) + 1
    if np.bincount(labels, minlength=k).min() < MIN_CLUSTER:
        return False
    cos = centroids(vectors, labels) @ centroids(vectors, labels).T
    turns = smooth(labels, pieces)
    for a in range(k):
        for b in range(a + 1, k):
            if cos[a, b] >= SAME_VOICE:
                return False
            if cos[a, b] >= DISTINCT_VOICE and not _take_turns(turns, a, b):
                return False
    return True


def cluster(
    vectors: np.ndarray, pieces: np.ndarray, min_k: int = 1, max_k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels for time-ordered window vectors, and the (k, dim) unit centroids."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, vectors.shape[1]), np.float32)
    step = max(1, -(-n // MAX_FIT))
    smoothed = smooth_vectors(vectors, pieces)
    centred = _unit(smoothed - smoothed.mean(0))
    raw, fit, fit_pieces = vectors[::step], centred[::step], pieces[::step]
    top = min(max_k or DEFAULT_MAX_SPEAKERS, len(raw))
    labels = np.zeros(len(raw), np.int64)
    for k in range(2, top + 1):
        trial = kmeans(fit, k)
        if k > min_k and not split_is_real(raw, trial, fit_pieces):
            break
        labels = trial
    if step > 1:
        labels = np.argmax(centred @ centroids(fit, labels).T, axis=1)
    # Clusters come from smoothed vectors; each window is then given to the nearest speaker
    # by its own, unsmoothed vector, which keeps turn changes sharp.
    centres = centroids(vectors, labels)
    return np.argmax(vectors @ centres.T, axis=1), centres.astype(np.float32)
