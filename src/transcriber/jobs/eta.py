"""When a running task will finish, from how fast this installation has been transcribing.

At the start of a run the estimate is the audio's length times the real-time factor
measured here (the median over recent tasks of the same model, with or without
speaker labels), so it is right before the first batch is done. As the run goes on,
its own pace takes over in proportion to how far it is. The expected end is stored on
the task, so every view counts down between reports; it moves later only by a quarter
of what a new estimate asks at a time, so it never jumps up without a reason.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# Before any task has finished here: base on the 2-core development machine runs at
# 0.03-0.07 of real time (docs/performance.md); a first task also loads the model, and
# identifying speakers adds about a fifth.
DEFAULT_RTF = 0.08
DEFAULT_DIARIZE_RTF = 0.1
RUNS_KEPT = 20  # the latest finished tasks that make the measured factor
MIN_AUDIO_S = 5.0  # shorter tasks are mostly start-up; they say little about speed
REFRESH_S = 60.0
OWN_PACE_FROM = 0.03  # a run's own pace counts once this much of it is done
RISE = 0.25  # of an estimate that moves the end later, this much is taken at once

Runs = Callable[[], list[tuple[dict[str, Any], float, float]]]


class Speeds:
    """Real-time factors measured on this installation, from its finished tasks."""

    def __init__(self, runs: Runs) -> None:
        self._runs = runs
        self._lock = threading.Lock()
        self._cached: list[tuple[dict[str, Any], float, float]] = []
        self._at = float("-inf")

    def rtf(self, options: dict[str, Any]) -> float:
        """Seconds of work per second of audio for a task with these options."""
        with self._lock:
            if time.monotonic() - self._at > REFRESH_S:
                self._cached, self._at = self._runs(), time.monotonic()
            runs = self._cached
        diarize = bool(options.get("diarize"))
        same = [
            spent / audio
            for o, spent, audio in runs
            if audio >= MIN_AUDIO_S
            and o.get("model") == options.get("model")
            and bool(o.get("diarize")) == diarize
        ][:RUNS_KEPT]
        if same:
            return statistics.median(same)
        return DEFAULT_DIARIZE_RTF if diarize else DEFAULT_RTF

    def forget(self) -> None:
        """Read the finished tasks again at the next estimate (one just finished)."""
        with self._lock:
            self._at = float("-inf")


class Countdown:
    """The expected end of one run of a task."""

    def __init__(self, audio_s: float | None, rtf: float, started: float | None = None) -> None:
        self.audio_s = audio_s
        self.rtf = rtf
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
        expected = self.audio_s * self.rtf if self.audio_s else None
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

    def expected_end(self, fraction: float, audio_s: float | None = None) -> datetime | None:
        """The wall-clock time the run should end; None before it has begun."""
        left = self.seconds_left(fraction, audio_s)
        return None if left is None else datetime.now(UTC) + timedelta(seconds=left)
