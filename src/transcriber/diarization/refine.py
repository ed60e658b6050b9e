"""Part two voices that the segmentation model kept as one local speaker.

The segmentation model sometimes hears two similar voices in one room as a single local
speaker for a whole chunk, in every chunk; that local speaker's embedding then stands
for both, and no clustering of local speakers can tell them apart (on the AMI excerpt
`dev01`, even the best possible assignment of local speakers leaves 43% DER). Shorter
windows of the same clean speech still tell them apart: CAM++ on 1.5 s windows scores
0.6-0.8 for the same voice against 0.15-0.25 for the two men of `dev00`/`dev01`.

So, after clustering the local speakers, each global speaker's windows are clustered
again, the same way (centroid linkage, now on unit centroids), with the same bar for
"another voice" (THRESHOLD's cosine) and for "a speaker" (MIN_SPEAKER_S of speech).
Its largest part stays the speaker; the second largest, if there is one, is the
other voice: it joins another speaker whose main part it is close to, or is a new
speaker. Only two parts are kept (a local speaker that holds two voices is what this
step is for): smaller ones are a few noisy windows, and a longer file has more of
them, so keeping them made the speaker count grow with the file's length. Each frame of a local
speaker then takes the label of its nearest window in time. A global speaker whose
windows do not split is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transcriber.diarization.clustering import MIN_SPEAKER_S, THRESHOLD
from transcriber.diarization.local import Chunk
from transcriber.diarization.segmentation import FRAMES
from transcriber.domain import SpeakerCount

SAME_VOICE = 1.0 - THRESHOLD**2 / 2  # the cosine of THRESHOLD between unit vectors
MAX_FIT = 1200  # windows of one speaker clustered (thinned evenly); all are then assigned


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return out


def cosine_linkage(x: np.ndarray, weights: np.ndarray, same: float) -> np.ndarray:
    """Centroid-linkage clustering of unit vectors by the cosine of their (weighted)
    centroids: the closest pair merges while its cosine is at least `same`."""
    n = len(x)
    sums = x.astype(np.float64) * weights[:, None]
    alive = np.ones(n, bool)
    owner = np.arange(n)
    u = _unit(sums)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    while alive.sum() > 1:
        i, j = divmod(int(np.argmax(sim)), n)
        if sim[i, j] < same:
            break
        sums[i] += sums[j]
        alive[j] = False
        owner[owner == j] = i
        u[i] = _unit(sums[i])
        sim[j, :] = sim[:, j] = -np.inf
        row = u @ u[i]
        row[~alive] = -np.inf
        row[i] = -np.inf
        sim[i, :] = sim[:, i] = row
    _, labels = np.unique(owner, return_inverse=True)
    return labels.astype(np.int64)


def _coverage(chunks: Sequence[Chunk]) -> np.ndarray:
    n_frames = max(c.first_frame for c in chunks) + FRAMES
    cover = np.zeros(n_frames, np.float32)
    for c in chunks:
        cover[c.first_frame : c.first_frame + FRAMES] += 1
    return cover


def split_voices(
    chunks: Sequence[Chunk], hard: np.ndarray, k: int, count: SpeakerCount | None = None
) -> tuple[np.ndarray, int]:
    """(chunks, FRAMES, 3) global speaker of each local speaker's frames, and the number
    of global speakers. Starts from `hard` (chunks, 3); never goes past `count.high`."""
    labels = np.repeat(hard[:, None, :].astype(np.int16), FRAMES, axis=1)
    high = count.high if count is not None and count.high is not None else None
    if not chunks or k == 0 or (high is not None and k >= high):
        return labels, k
    cover = _coverage(chunks)
    rows = [
        (c, int(s), int(f), v, w / cover[chunk.first_frame + int(f)])
        for c, chunk in enumerate(chunks)
        for s, f, v, w in zip(
            chunk.window_speaker, chunk.window_frame, chunk.windows, chunk.window_s, strict=True
        )
        if hard[c, s] >= 0
    ]
    if len(rows) < 2:
        return labels, k
    x = _unit(np.array([r[3] for r in rows], np.float64))
    # Seconds of speech each window stands for: overlapping chunks hear a second many times.
    weight = np.array([r[4] for r in rows], np.float64)
    first = np.array([hard[r[0], r[1]] for r in rows])
    new = first.copy()
    parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for g in range(k):
        members = np.flatnonzero(first == g)
        if len(members) < 2:
            continue
        # A long file has thousands of windows per speaker: cluster an even sample of them.
        step = max(1, -(-len(members) // MAX_FIT))
        fit = members[::step]
        sub = cosine_linkage(x[fit], weight[fit], SAME_VOICE)
        seconds = np.bincount(sub, weights=weight[fit]) * step
        large = np.flatnonzero(seconds >= MIN_SPEAKER_S)
        if len(large) < 2:
            continue
        # Two voices at most: the one the segmentation model merged in, beside the
        # speaker's own. Smaller parts past those two are a few noisy windows (laughter,
        # a cough, a word overlapped), and their number grows with the file's length;
        # each window then goes to the nearer of the two.
        large = large[np.argsort(-seconds[large])][:2]
        centres = _unit(np.array([x[fit][sub == b].mean(0) for b in large]))
        parts[g] = (members, centres, np.argmax(x[members] @ centres.T, axis=1))
    main = {
        g: parts[g][1][0] if g in parts else _unit(x[first == g].mean(0))
        for g in range(k)
        if (first == g).any()
    }
    for g, (members, centres, nearest) in parts.items():
        for j in range(1, len(centres)):
            others = [(float(centres[j] @ v), h) for h, v in main.items() if h != g]
            near = max(others, default=None)
            if near is not None and near[0] >= SAME_VOICE:
                target = near[1]
            elif high is None or k < high:
                target, k = k, k + 1
            else:
                continue  # the count asked for is reached: the part stays where it was
            new[members[nearest == j]] = target
    by_speaker: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (c, s, f, _, _), label in zip(rows, new, strict=True):
        by_speaker.setdefault((c, s), []).append((f, int(label)))
    frames = np.arange(FRAMES)
    for (c, s), found in by_speaker.items():
        centre = np.array([f for f, _ in found])
        label = np.array([g for _, g in found])
        labels[c, :, s] = label[np.argmin(np.abs(frames[:, None] - centre[None, :]), axis=1)]
    return labels, k
