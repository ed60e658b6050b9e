"""Diarization error rate, scored the way md-eval and pyannote score it.

The time axis is cut at every boundary. Around each reference boundary a collar
(±`collar` seconds) is not scored. In each scored piece, with `r` reference and `h`
hypothesis speakers active: missed speech is max(0, r - h), false alarm is
max(0, h - r), and confusion is min(r, h) minus the speakers matched under the one-
to-one label mapping that maximises matched time over the whole file. All three are
divided by the total reference speech (overlapping speakers count once each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transcriber.diarization.timeline import Turn


@dataclass(frozen=True, slots=True)
class DerResult:
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    total: float  # seconds of reference speech scored

    @property
    def rates(self) -> tuple[float, float, float]:
        t = self.total or 1.0
        return self.missed / t, self.false_alarm / t, self.confusion / t


def _merge(spans: Sequence[tuple[float, float]]) -> np.ndarray:
    out: list[list[float]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _active(spans: np.ndarray, points: np.ndarray) -> np.ndarray:
    if len(spans) == 0:
        return np.zeros(len(points), dtype=bool)
    i = np.searchsorted(spans[:, 0], points, side="right") - 1
    inside: np.ndarray = (i >= 0) & (points < spans[np.maximum(i, 0), 1])
    return inside


def best_mapping(gain: np.ndarray) -> list[tuple[int, int]]:
    """Row → column pairs maximising the summed gain (Hungarian method, O(n³))."""
    rows, cols = gain.shape
    n = max(rows, cols)
    if n == 0:
        return []
    cost = np.zeros((n + 1, n + 1))
    cost[1 : rows + 1, 1 : cols + 1] = -gain
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, dtype=np.int64)  # column → row (1-based; 0 = free)
    for r in range(1, n + 1):
        match[0], col = r, 0
        best = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        prev = np.zeros(n + 1, dtype=np.int64)
        while match[col] != 0:
            used[col] = True
            row = match[col]
            reduced = cost[row] - u[row] - v
            better = ~used & (reduced < best)
            best[better], prev[better] = reduced[better], col
            nxt = int(np.argmin(np.where(used, np.inf, best)))
            delta = best[nxt]
            u[match[used]] += delta
            v[used] -= delta
            best[~used] -= delta
            col = nxt
        while col:
            match[col] = match[prev[col]]
            col = int(prev[col])
    return [(int(match[c]) - 1, c - 1) for c in range(1, cols + 1) if 0 < match[c] <= rows]


def der(
    reference: Sequence[Turn],
    hypothesis: Sequence[Turn],
    collar: float = 0.25,
    scored: tuple[float, float] | None = None,
) -> DerResult:
    """Score `hypothesis` against `reference`, optionally only inside `scored` (a UEM)."""
    ref_names = sorted({t.speaker for t in reference})
    hyp_names = sorted({t.speaker for t in hypothesis})
    cuts = [x for t in (*reference, *hypothesis) for x in (t.start, t.end)]
    edges = [x for t in reference for x in (t.start, t.end)]
    cuts += [x + d for x in edges for d in (-collar, collar)]
    if scored is not None:
        cuts += list(scored)
    bounds = np.unique(np.array(cuts, dtype=np.float64))
    if len(bounds) < 2:
        return DerResult(0.0, 0.0, 0.0, 0.0, 0.0)
    mids, dur = (bounds[1:] + bounds[:-1]) / 2, np.diff(bounds)
    weight = dur * ~_active(_merge([(x - collar, x + collar) for x in edges]), mids)
    if scored is not None:
        weight *= (mids > scored[0]) & (mids < scored[1])

    def activity(turns: Sequence[Turn], names: list[str]) -> np.ndarray:
        act = [
            _active(_merge([(t.start, t.end) for t in turns if t.speaker == n]), mids)
            for n in names
        ]
        return np.array(act, dtype=bool).reshape(len(names), len(mids))

    ref, hyp = activity(reference, ref_names), activity(hypothesis, hyp_names)
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)
    total = float((n_ref * weight).sum())
    missed = float((np.maximum(0, n_ref - n_hyp) * weight).sum())
    false_alarm = float((np.maximum(0, n_hyp - n_ref) * weight).sum())
    gain = (
        (ref[:, None, :] & hyp[None, :, :]) @ weight if len(ref) and len(hyp) else np.zeros((0, 0))
    )
    correct = sum(float(gain[i, j]) for i, j in best_mapping(np.asarray(gain)))
    confusion = float((np.minimum(n_ref, n_hyp) * weight).sum()) - correct
    err = missed + false_alarm + confusion
    rate = err / total if total > 0 else (0.0 if err == 0 else 1.0)
    return DerResult(rate, missed, false_alarm, max(0.0, confusion), total)
