"""The background window producer: order, bounded lead, errors and early stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from transcriber.errors import InputError
from transcriber.media.prefetch import prefetch


def test_items_arrive_in_order_and_the_lead_is_bounded() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(50):
            produced.append(i)
            yield i

    got = []
    for item in prefetch(source(), depth=3):
        time.sleep(0.002)
        # The queue holds 3 and the producer may hold one more in hand.
        assert len(produced) - item <= 5
        got.append(item)
    assert got == list(range(50))


def test_a_producer_error_reaches_the_consumer_unchanged() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise InputError("truncated.mp4: the file ends early")

    it = prefetch(source(), depth=2)
    assert next(it) == 1
    with pytest.raises(InputError, match="ends early"):
        next(it)


def test_stopping_early_stops_the_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    it = prefetch(source(), depth=2)
    assert next(it) == 0
    it.close()  # e.g. the task was cancelled
    assert closed.wait(5)
    assert threading.active_count() == before
