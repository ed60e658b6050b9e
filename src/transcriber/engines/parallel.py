"""Run an engine's batches on several model replicas at once, results in input order.

On a CPU, one CTranslate2 replica with N threads spends much of a beam-search step
handing small matrix products to its threads and waiting for them; N replicas of one
thread each, every one working through its own batch, keep every core busy instead
(docs/performance.md). The items (batches of speech windows) are pulled from their
iterator in the caller's thread only, so decoding and VAD stay single-threaded and
overlap the inference, and at most `workers + 1` batches exist at a time, which keeps
memory bounded however long the file is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, lazily, yielding results in input order.

    One item more than there are workers is handed out ahead, so that no worker waits
    while the caller takes a result and pulls the next item. An exception from `fn`
    is raised here when its result is due. If the caller stops early (an exception,
    or closing this generator), items not yet started are dropped and those running
    are waited for, so nothing runs on after the call has returned.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="engine")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
