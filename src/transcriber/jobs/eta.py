"""When a running task will finish, from how fast this installation has been transcribing.

The time a task takes here is close to a fixed start-up cost per file (the first window,
the language detection, copies of the model waiting on a short file) plus a cost per
second of audio, so a short file says little about a long one by its ratio alone.
`Speeds` fits that line to the tasks measured here (same model, with or without speaker
labels): first those this process ran itself, timed from the end of model loading; else
the job store's finished tasks, which any node can read. At the start of a run the
estimate is that line at the file's length, so it is right before the first batch is
done; as the run goes on, its own pace takes over in proportion to how far it is. The
expected end is stored on the task, so every view counts down between reports; it moves
later only by a quarter of what a new estimate asks at a time, so it never jumps up
without a reason.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Before any task has been measured here: the 2-core development machine (two model
# copies) takes about 6 s a file plus 0.03 s a second of audio (docs/performance.md);
# identifying speakers adds about a quarter.
DEFAULT_START_S = 6.0
DEFAULT_RTF = 0.03
DIARIZE_FACTOR = 1.25
RUNS_KEPT = 20  # the latest measured tasks that make the line
MIN_SPREAD = 1.5  # lengths must differ this much (longest / shortest) to fit a line
REFRESH_S = 60.0
OWN_PACE_FROM = 0.03  # a run's own pace counts once this much of it is done
RISE = 0.25  # of an estimate that moves the end later, this much is taken at once

Runs = Callable[[], list[tuple[dict[str, Any], float, float]]]


@dataclass(frozen=True, slots=True)
class Cost:
    """Seconds of work for a file: `start_s` + `per_s` × its seconds of audio."""

    start_s: float
    per_s: float

    def of(self, audio_s: float) -> float:
        return self.start_s + self.per_s * audio_s

    @staticmethod
    def fit(runs: Sequence[tuple[float, float]]) -> Cost | None:
        """The line through (audio seconds, work seconds) runs, by least squares when
        their lengths differ enough; else the start-up cost is taken as the default and
        the rest spread per second. None without runs."""
        if not runs:
            return None
        lengths = [a for a, _ in runs]
        if len(runs) >= 2 and max(lengths) >= MIN_SPREAD * min(lengths):
            mean_a = statistics.fmean(lengths)
            mean_w = statistics.fmean(w for _, w in runs)
            var = sum((a - mean_a) ** 2 for a in lengths)
            per_s = sum((a - mean_a) * (w - mean_w) for a, w in runs) / var
            start_s = mean_w - per_s * mean_a
            if per_s > 0 and start_s >= 0:
                return Cost(start_s, per_s)
        start = min(DEFAULT_START_S, statistics.median(w for _, w in runs) / 2)
        return Cost(start, statistics.median(max(0.0, w - start) / a for a, w in runs))


def _same_kind(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("model") == b.get("model") and bool(a.get("diarize")) == bool(b.get("diarize"))


class Speeds:
    """How fast this installation transcribes, from the tasks it measured."""

    def __init__(self, runs: Runs) -> None:
        self._runs = runs
        self._lock = threading.Lock()
        self._cached: list[tuple[dict[str, Any], float, float]] = []
        self._at = float("-inf")
        self._own: deque[tuple[dict[str, Any], float, float]] = deque(maxlen=4 * RUNS_KEPT)

    def observe(self, options: dict[str, Any], work_s: float, audio_s: float) -> None:
        """A run of this process took `work_s` seconds (model loading left out)."""
        if audio_s > 0 and work_s > 0:
            with self._lock:
                self._own.appendleft((options, work_s, audio_s))
                self._at = float("-inf")  # the job store has one more finished task too

    def cost(self, options: dict[str, Any]) -> Cost:
        """What a task with these options costs here."""
        with self._lock:
            own = list(self._own)
            if time.monotonic() - self._at > REFRESH_S:
                self._cached, self._at = self._runs(), time.monotonic()
            stored = self._cached
        for runs in (own, stored):
            same = [(a, w) for o, w, a in runs if _same_kind(o, options)][:RUNS_KEPT]
            if (found := Cost.fit(same)) is not None:
                return found
        factor = DIARIZE_FACTOR if options.get("diarize") else 1.0
        return Cost(DEFAULT_START_S * factor, DEFAULT_RTF * factor)


class Countdown:
    """The expected end of one run of a task."""

    def __init__(self, audio_s: float | None, cost: Cost, started: float | None = None) -> None:
        self.audio_s = audio_s
        self.cost = cost
        self.started = started  # when the work began (monotonic); None until it does
        self._end: float | None = None  # monotonic

    def begin(self, now: float | None = None) -> None:
        """The model is loaded and the work starts: the clock runs from here (loading a
        model takes as long as it takes, whatever the audio)."""
        if self.started is None:
            self.started = time.monotonic() if now is None else now

    def seconds_left(
        self, fraction: float, audio_s: float | None = None, now: float | None = None
    ) -> float | None:
        """Seconds to the expected end after `fraction` of the work; None while unknown."""
        now = time.monotonic() if now is None else now
        if audio_s:
            self.audio_s = audio_s
        if self.started is None:
            return None
        elapsed = now - self.started
        expected = self.cost.of(self.audio_s) if self.audio_s else None
        own = elapsed / fraction if fraction >= OWN_PACE_FROM else None
        total: float | None = expected if expected is not None else own
        if expected is not None and own is not None:
            total = (1 - fraction) * expected + fraction * own
        if total is None:
            return None
        end = self.started + total
        if self._end is not None and end > self._end:
            end = self._end + RISE * (end - self._end)
        self._end = end
        return max(0.0, end - now)

    def worked(self, now: float | None = None) -> float | None:
        """Seconds since the work began (None if it never did)."""
        if self.started is None:
            return None
        return (time.monotonic() if now is None else now) - self.started

    def expected_end(self, fraction: float, audio_s: float | None = None) -> datetime | None:
        """The wall-clock time the run should end; None before it has begun."""
        left = self.seconds_left(fraction, audio_s)
        return None if left is None else datetime.now(UTC) + timedelta(seconds=left)
