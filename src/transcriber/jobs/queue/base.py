"""The JobQueue role: wake workers for new tasks, cancel running ones, stop cleanly."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def start(self) -> None: ...

    def notify(self) -> None:
        """A task was queued."""
        ...

    def cancel(self, task_id: str) -> None:
        """Stop the task within seconds if it is running here."""
        ...

    def stop(self) -> None:
        """Stop taking work; running tasks go back to the queue."""
        ...
