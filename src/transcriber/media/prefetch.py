"""Run an iterator in a background thread, a few items ahead of its consumer.

Decoding and VAD run on one core while the engine's matrix work runs on the
others; prefetching lets the next windows be cut while a batch is decoded.
The queue is small, so memory stays bounded, and an error in the producer is
raised in the consumer, unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(source: Iterator[T], depth: int) -> Iterator[T]:
    """Yield `source`'s items, produced at most `depth` ahead in a daemon thread."""
    items: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer as is
            put(_Failure(error))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # the consumer stopped early: release the file now
        put(_DONE)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
