"""In-process publish/subscribe of task events, safe to publish from worker threads.

WebSocket handlers subscribe on the event loop; workers publish from their
threads. (Across processes the scale-out queue relays events through Redis.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskEvent:
    task_id: str
    owner: str
    kind: str  # "status" | "progress" | "text" | "edited" | "completed" | "failed" | "cancelled"
    #            | "deleted"
    data: dict[str, Any] = field(default_factory=dict)


FINAL_KINDS = frozenset({"completed", "failed", "cancelled", "deleted"})
WEBSOCKET_KINDS = frozenset({"status", "progress", "edited"} | FINAL_KINDS)
"""What the WebSocket forwards; `text` (a batch's new text) feeds OpenAI's stream only.
`edited` (`{id, revision}`) tells the task's viewers that someone saved a change."""


@dataclass(eq=False)
class _Sub:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[TaskEvent]
    task_id: str | None
    owner: str | None


class EventBus:
    def __init__(self) -> None:
        self._subs: set[_Sub] = set()
        self._lock = threading.Lock()

    def publish(self, event: TaskEvent) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.task_id not in (None, event.task_id):
                continue
            if sub.owner is not None and sub.owner != event.owner:
                continue
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, event)
            except RuntimeError:  # that loop is closed; its subscriber is gone
                self._drop(sub)

    def close(self) -> None:
        """Nothing to release in process; the Redis relay overrides this."""

    def _drop(self, sub: _Sub) -> None:
        with self._lock:
            self._subs.discard(sub)

    @asynccontextmanager
    async def subscribe(
        self, task_id: str | None = None, owner: str | None = None
    ) -> AsyncIterator[asyncio.Queue[TaskEvent]]:
        sub = _Sub(asyncio.get_running_loop(), asyncio.Queue(maxsize=1000), task_id, owner)
        with self._lock:
            self._subs.add(sub)
        try:
            yield sub.queue
        finally:
            self._drop(sub)
