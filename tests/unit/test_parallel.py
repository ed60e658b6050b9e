"""ordered_map: batches on several threads, results in order, nothing left running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from transcriber.engines.parallel import ordered_map


class Tracker:
    """Counts the calls running at once and the items pulled from the source."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = self.pulled = self.finished = 0

    def source(self, n: int) -> Iterator[int]:
        for i in range(n):
            self.pulled += 1
            yield i

    def work(self, x: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        # Later items finish first: the order of results must not follow finishing order.
        time.sleep(0.02 * (5 - x % 5))
        with self.lock:
            self.running -= 1
            self.finished += 1
        return x * x


def test_results_come_in_input_order_with_calls_running_at_once() -> None:
    t = Tracker()
    assert list(ordered_map(t.work, t.source(12), workers=3)) == [i * i for i in range(12)]
    assert t.most == 3


def test_one_worker_runs_in_the_callers_thread() -> None:
    threads: set[str] = set()

    def work(x: int) -> int:
        threads.add(threading.current_thread().name)
        return x

    assert list(ordered_map(work, range(4), workers=1)) == [0, 1, 2, 3]
    assert threads == {threading.current_thread().name}


def test_items_are_pulled_lazily() -> None:
    t = Tracker()
    results = ordered_map(t.work, t.source(100), workers=2)
    assert next(results) == 0
    # One result taken: the source has been read at most workers + 1 ahead of it.
    assert t.pulled <= 4
    results.close()


def test_an_error_is_raised_in_order_and_nothing_runs_on() -> None:
    t = Tracker()

    def work(x: int) -> int:
        if x == 3:
            raise ValueError("bad item 3")
        return t.work(x)

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for r in ordered_map(work, t.source(50), workers=2):
            got.append(r)
    assert got == [0, 1, 4]
    assert t.running == 0  # the calls in flight were waited for
    assert t.pulled <= 7  # and the rest of the source was never read


def test_stopping_early_waits_for_running_calls_and_drops_the_rest() -> None:
    t = Tracker()
    results = ordered_map(t.work, t.source(50), workers=2)
    assert [next(results), next(results)] == [0, 1]
    results.close()
    assert t.running == 0
    assert t.finished <= 5  # at most the ones handed out: nothing new started
