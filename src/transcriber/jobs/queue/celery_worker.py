"""`transcriber worker`: a Celery worker process that runs queued tasks.

Each notice names a task; the worker claims it in the job store (only a queued
task can be claimed, so a repeated notice does nothing) and runs it with the
same `Worker` as the embedded queue, checkpoints included. While a task runs,
its lease is renewed every `lease_s / 4`. A worker that dies stops renewing, and
any other worker's sweep puts the task back in the queue after `lease_s`, where
it resumes from its last checkpoint. On SIGTERM the running task goes back to the
queue at its next progress step and its notice is sent again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from transcriber.jobs.queue.celery import TASK_NAME, CeleryQueue
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.worker import Controls, Worker
from transcriber.runtime import release_memory

log = logging.getLogger(__name__)


@dataclass
class _Running:
    claim: str
    cancel: threading.Event


class WorkerNode:
    def __init__(
        self, jobs: SqlJobStore, worker: Worker, queue: CeleryQueue, threads: int, lease_s: float
    ) -> None:
        self.jobs, self.worker, self.queue = jobs, worker, queue
        self.threads, self.lease_s = max(1, threads), lease_s
        self.shutdown = threading.Event()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    # --- one notice -------------------------------------------------------------
    def handle(self, task_id: str) -> str:
        """Run task `task_id` if it is still queued; say what happened."""
        if self.shutdown.is_set():
            self.queue.notify(task_id)  # hand it to a worker that is staying
            return "handed back"
        task = self.jobs.claim(task_id)
        if task is None:
            return "not queued"
        cancel = threading.Event()
        with self._lock:
            self._running[task.id] = _Running(task.claim or "", cancel)
        try:
            self.worker.run(task, Controls(cancel=cancel, shutdown=self.shutdown))
        finally:
            with self._lock:
                self._running.pop(task.id, None)
                idle = not self._running
            if idle:
                release_memory()
        after = self.jobs.get(task.id)
        if after is not None and after.status == TaskStatus.queued:  # returned at shutdown
            self.queue.notify(task.id)
        return after.status.value if after is not None else "deleted"

    # --- leases -----------------------------------------------------------------
    def renew(self) -> None:
        """Refresh the lease of every task running here; stop those no longer ours."""
        with self._lock:
            running = list(self._running.items())
        for task_id, r in running:
            if not self.jobs.heartbeat(task_id, r.claim):
                r.cancel.set()  # cancelled, deleted, or taken over after a stall

    def sweep(self) -> list[str]:
        """Requeue tasks whose worker stopped renewing; re-send notices the broker lost
        and webhooks that a stopped worker still owed."""
        stale = self.jobs.requeue_stale(self.lease_s)
        if stale:
            log.warning("requeued %d task(s) whose worker went silent: %s", len(stale), stale)
        for task_id in stale:
            self.queue.notify(task_id)
        if not stale and self.queue.pending() == 0:  # the broker lost its notices (a restart)
            for task_id in self.jobs.queued_ids():
                self.queue.notify(task_id)
        self.worker.resend_owed_webhooks()
        return stale

    def _every(self, period: float, action: str) -> None:
        while not self._stopped.wait(period):
            try:
                getattr(self, action)()
            except Exception:  # keep the thread alive through a database hiccup
                log.exception("%s failed", action)

    # --- the process ------------------------------------------------------------
    def run(self) -> None:
        from celery.signals import worker_shutting_down

        app = self.queue.app
        app.task(name=TASK_NAME, ignore_result=True)(self.handle)

        def on_shutdown(**_: object) -> None:
            self.shutdown.set()

        worker_shutting_down.connect(on_shutdown, weak=False)
        self.sweep()
        for period, action in ((self.lease_s / 4, "renew"), (self.lease_s / 2, "sweep")):
            threading.Thread(target=self._every, args=(period, action), daemon=True).start()
        try:
            app.worker_main(
                [
                    "worker",
                    "--pool=threads",
                    f"--concurrency={self.threads}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-Ofair",
                ]
            )
        finally:
            self._stopped.set()
