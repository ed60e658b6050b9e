"""The live sessions of one process: how many may run, and the threads they decode on.

Sessions share one pool of worker threads, sized for `limit` sessions, so that live
decoding never takes the threads that database and storage calls of other requests
run on. A session over the limit is refused (the protocols close with code 1013,
"try again later"); the limit is per process, so with several API nodes each has its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Gauge

from transcriber.errors import TooManySessionsError

# Worker threads per session: the VAD and recording, a partial decode, a look-ahead
# decode and a final (with its speaker labels) may all be under way at once.
THREADS_PER_SESSION = 4


class LiveSessions:
    def __init__(self, limit: int, gauge: Gauge | None = None) -> None:
        self.limit = limit
        self.active = 0
        self._by_owner: dict[str, int] = {}
        self._gauge = gauge
        self.executor = ThreadPoolExecutor(
            max_workers=max(1, limit) * THREADS_PER_SESSION, thread_name_prefix="live"
        )

    def open_for(self, owner: str) -> int:
        """How many live sessions `owner` has open now (they count against its quota)."""
        return self._by_owner.get(owner, 0)

    def acquire(self, owner: str) -> None:
        """Take a place, or TooManySessionsError. Call on the event loop only."""
        if self.limit == 0:
            raise TooManySessionsError(
                "live transcription is off on this service (TRANSCRIBER_MAX_LIVE_SESSIONS=0)"
            )
        if self.active >= self.limit:
            raise TooManySessionsError(
                f"all {self.limit} live sessions are in use; try again later"
            )
        self.active += 1
        self._by_owner[owner] = self.open_for(owner) + 1
        self._show()

    def release(self, owner: str) -> None:
        self.active = max(0, self.active - 1)
        left = self.open_for(owner) - 1
        if left > 0:
            self._by_owner[owner] = left
        else:
            self._by_owner.pop(owner, None)
        self._show()

    def _show(self) -> None:
        if self._gauge is not None:
            self._gauge.set(self.active)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
