"""The JobQueue role: wake workers for new tasks, cancel running ones, stop cleanly.

The job store is the truth about every task; a queue only tells workers that a
task is waiting. A lost or repeated notice is therefore harmless: a worker
claims a task with a conditional update, and only a `queued` task can be claimed.
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    runs_tasks: bool
    """False when nothing will run the tasks queued here (embedded with no workers), so
    that requests which wait for a result can refuse at once instead of hanging."""

    def start(self) -> None: ...

    def notify(self, task_id: str) -> None:
        """Task `task_id` was queued."""
        ...

    def cancel(self, task_id: str) -> None:
        """Stop the task within seconds if it is running here."""
        ...

    def check(self) -> None:
        """Raise if workers cannot be reached (for `/ready`)."""
        ...

    def stop(self) -> None:
        """Stop taking work; running tasks go back to the queue."""
        ...
