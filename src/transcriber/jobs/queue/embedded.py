"""EmbeddedQueue: worker threads in the service process, with the job store as the queue.

Because the queue *is* the database, queued tasks survive a restart, and a
task that was running when the process died is found `processing` at the next
start and resumed from its checkpoint.
"""

from __future__ import annotations

import logging
import threading

from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.worker import Controls, Worker
from transcriber.runtime import release_memory

log = logging.getLogger(__name__)
WEBHOOK_SWEEP_S = 60.0


class EmbeddedQueue:
    def __init__(self, jobs: SqlJobStore, worker: Worker, workers: int) -> None:
        self.jobs, self.worker, self.n = jobs, worker, workers
        self.runs_tasks = workers > 0
        self._wake = threading.Condition()
        self._shutdown = threading.Event()
        self._running: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        recovered = self.jobs.recover()
        if recovered:
            log.warning("resuming %d interrupted task(s): %s", len(recovered), recovered)
        for i in range(self.n):
            t = threading.Thread(target=self._loop, name=f"worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.runs_tasks:
            t = threading.Thread(target=self._resend_webhooks, name="webhooks", daemon=True)
            t.start()
            self._threads.append(t)

    def notify(self, task_id: str) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def check(self) -> None:
        """Nothing to reach: the workers are threads of this process."""

    def cancel(self, task_id: str) -> None:
        event = self._running.get(task_id)
        if event is not None:
            event.set()

    def stop(self) -> None:
        self._shutdown.set()
        self._wake_all()
        for t in self._threads:
            t.join(timeout=30)

    def _resend_webhooks(self) -> None:
        """At start and then every minute: webhooks owed since before a crash, or whose
        sender died while posting (jobs/webhooks.py)."""
        while True:
            try:
                self.worker.resend_owed_webhooks()
            except Exception:  # the database is down: try again at the next round
                log.exception("cannot look for owed webhooks")
            if self._shutdown.wait(WEBHOOK_SWEEP_S):
                return

    def _loop(self) -> None:
        while not self._shutdown.is_set():
            try:
                task = self.jobs.claim_next()
            except Exception:  # the database is down: wait for it, keep the thread
                log.exception("cannot take the next task; retrying")
                self._shutdown.wait(5.0)
                continue
            if task is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            cancel = threading.Event()
            self._running[task.id] = cancel
            try:
                self.worker.run(task, Controls(cancel=cancel, shutdown=self._shutdown))
            except Exception:  # Worker.run raises nothing by design; if it ever does,
                log.exception("task %s: the worker stopped", task.id)  # the thread lives on
            finally:
                self._running.pop(task.id, None)
                if not self._running:
                    release_memory()  # idle: give the job's freed heap back
