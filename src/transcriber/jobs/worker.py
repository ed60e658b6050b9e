"""Worker: run one claimed task through the pipeline, checkpointing as it goes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from transcriber.domain import Checkpoint, Progress, Stage
from transcriber.errors import CancelledError, TranscriberError, UnavailableError, naming
from transcriber.formats import render
from transcriber.formats.json_doc import notice_doc
from transcriber.jobs.codec import checkpoint_from_texts, checkpoint_to_text, options_from_dict
from transcriber.jobs.eta import Countdown, Speeds
from transcriber.jobs.events import EventBus, TaskEvent
from transcriber.jobs.metrics import Metrics
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.view import public
from transcriber.jobs.webhooks import Webhook, WebhookSender
from transcriber.media.peaks import PeakMeter
from transcriber.outbound import download
from transcriber.pipeline import Pipeline
from transcriber.storage import Store

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5
# Storage that cannot be reached is tried again after these waits (seconds) before the
# task is put back in the queue: a restart of the object store or a network blip must
# not fail a task whose transcript is done, nor use up its attempts in a moment.
STORAGE_RETRY_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# A job database that went away mid-task is tried this often until it is back, when the
# task is put back in the queue: it resumes from its checkpoint, its attempt counted.
DATABASE_RETRY_S = 2.0


T = TypeVar("T")


class ShutdownRequested(Exception):
    """The process is stopping; the task goes back to the queue."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for media that a task names by URL and the worker downloads."""

    limit_bytes: int = int(2048e6)
    max_duration_s: float = 6 * 3600.0
    allow_private: bool = False


@dataclass
class Controls:
    cancel: threading.Event
    shutdown: threading.Event


def result_key(task_id: str) -> str:
    return f"{task_id}/result.json"


def peaks_key(task_id: str) -> str:
    return f"{task_id}/peaks.json"


class Worker:
    def __init__(
        self,
        jobs: SqlJobStore,
        store: Store,
        pipeline: Pipeline,
        events: EventBus,
        metrics: Metrics | None = None,
        webhooks: WebhookSender | None = None,
        fetch: FetchPolicy | None = None,
    ) -> None:
        self.jobs, self.store, self.pipeline, self.events = jobs, store, pipeline, events
        self.metrics = metrics
        self.webhooks = webhooks
        self.fetch = fetch or FetchPolicy()
        self.speeds = Speeds(jobs.recent_runs)

    def publish(self, task_id: str, kind: str) -> None:
        task = self.jobs.get(task_id)
        if task is not None:
            self.events.publish(TaskEvent(task.id, task.owner, kind, public(task)))

    def run(self, task: TaskRecord, controls: Controls) -> None:
        """Run the task to its end: completed, failed with a reason, cancelled, or put back
        in the queue. Nothing is raised, so the worker thread lives on."""
        try:
            self._run(task, controls)
        except OperationalError as e:  # the job database went away, here or in a handler
            self._put_back_when_reachable(task, controls, e)

    def _put_back_when_reachable(
        self, task: TaskRecord, controls: Controls, error: OperationalError
    ) -> None:
        """Not the task's fault: once the database answers again, the task goes back to
        the queue (or fails, on its last attempt). At shutdown first, it is left
        `processing`, for the next start's recovery or another worker's sweep."""
        reason = f"{task.filename}: the job database could not be reached while it ran"
        log.warning("task %s: the job database went away (%s); it is put back once the "
                    "database is reachable", task.id, type(error.orig).__name__)  # fmt: skip
        while True:
            try:
                outcome = self.jobs.put_back(task.id, task.claim or "", reason, "unavailable")
                break
            except OperationalError:
                if controls.shutdown.wait(DATABASE_RETRY_S):
                    return
        log.warning("task %s %s after the database came back", task.id, outcome)
        try:
            if outcome == "failed":
                self.publish(task.id, "failed")
                self._tell(task.id)
            elif outcome == "requeued":
                self.publish(task.id, "status")
        except OperationalError:  # gone again: the page polls, and the task is safe
            log.warning("task %s: its new state was not announced", task.id)

    def _run(self, task: TaskRecord, controls: Controls) -> None:
        claim = task.claim or ""
        self.publish(task.id, "status")
        last = 0.0
        countdown = Countdown(task.duration, self.speeds.cost(task.options))

        def on_progress(p: Progress) -> None:
            nonlocal last
            if controls.cancel.is_set():
                raise CancelledError("cancelled by the user")
            if controls.shutdown.is_set():
                raise ShutdownRequested
            now = time.monotonic()
            if now - last < PROGRESS_EVERY_S and p.fraction < 1.0:
                return
            last = now
            total = p.audio_total or None
            fraction = p.fraction
            if p.stage != Stage.loading:
                countdown.begin()
            else:  # a resumed run stands where its checkpoint left it, not at 0
                fraction = max(fraction, task.progress)
            end = countdown.expected_end(fraction, total)
            still_ours = self.jobs.progress(
                task.id, claim, p.stage.value, fraction, p.audio_done, total, end
            )
            if not still_ours:  # cancelled or taken over elsewhere
                raise CancelledError("the task is no longer ours")
            self.publish(task.id, "progress")

        def on_checkpoint(step: Checkpoint) -> None:
            data = checkpoint_to_text(step)
            if not self.jobs.append_checkpoint(task.id, claim, data):
                return  # no longer ours: the next progress report stops the run
            if self.metrics:
                self.metrics.checkpoint_bytes.inc(len(data.encode()))
            texts = [t for t in (seg.text.strip() for seg in step.segments) if t]
            said = {"id": task.id, "texts": texts}
            self.events.publish(TaskEvent(task.id, task.owner, "text", said))

        started = time.perf_counter()
        try:
            checkpoint = checkpoint_from_texts(self.jobs.checkpoint(task.id))
            if checkpoint is not None:
                at = max(checkpoint.audio_done.values(), default=0.0)
                log.info("task %s resumes at %.1f s of its audio, from its checkpoint", task.id, at)
            source = task.options.get("source_url")
            fetched = bool(source) and not self.store.exists(task.input_key)
            if fetched:
                self._download(task, claim, str(source))
            with (
                naming(task.input_key, task.filename),
                self._local_input(task, claim, controls) as path,
                naming(path, task.filename),
            ):
                peaks = PeakMeter()
                transcript = self.pipeline.run(
                    path,
                    options_from_dict(task.options),
                    on_progress=on_progress,
                    checkpoint=checkpoint,
                    on_checkpoint=on_checkpoint,
                    max_duration_s=self.fetch.max_duration_s,
                    peaks=peaks,
                )
            document = render(transcript, "json")
            # A worker that stalled (a paused machine) past its lease finds its task taken
            # over, or finished and deleted: it must not write over what is there now.
            if not self.jobs.heartbeat(task.id, claim):
                raise CancelledError("the task is no longer ours")
            self._reach(
                task,
                claim,
                controls,
                lambda: self.store.put_bytes(peaks_key(task.id), peaks.to_json()),
            )
            self._reach(task, claim, controls,
                        lambda: self.store.put_bytes(result_key(task.id), document))  # fmt: skip
            said = [notice_doc(n) for n in transcript.notices]
            if self.jobs.complete(task.id, claim, result_key(task.id), transcript.language,
                                  transcript.duration, time.perf_counter() - started,
                                  webhook=self._owes_webhook(task), warnings=said):  # fmt: skip
                self.speeds.observe(task.options, countdown.worked() or 0.0, transcript.duration)
                if self.metrics:
                    self.metrics.observe_transcript(transcript)
                self.publish(task.id, "completed")
                self._tell(task.id)
        except ShutdownRequested:
            self.jobs.requeue(task.id, claim)
            log.info("task %s returned to the queue at shutdown", task.id)
        except CancelledError:
            log.info("task %s cancelled", task.id)
        except UnavailableError as e:  # not the task's fault: it is tried again
            outcome = self.jobs.put_back(task.id, claim, e.message, e.code)
            log.warning("task %s %s: %s", task.id, outcome, e.message)
            if outcome == "failed":
                self.publish(task.id, "failed")
                self._tell(task.id)
            elif outcome == "requeued":
                self.publish(task.id, "status")
        except TranscriberError as e:  # bad input or an unloadable model: the reason is the message
            self._fail(task, claim, e.message, e.code)
        except OperationalError:  # the database, not the task: run() puts it back
            raise
        except Exception as e:  # a bug must fail the task, not kill the worker thread
            log.exception("task %s crashed", task.id)
            reason = f"{task.filename}: internal error: {type(e).__name__}: {e}"
            self._fail(task, claim, reason, "internal_error")

    @contextmanager
    def _local_input(self, task: TaskRecord, claim: str, controls: Controls) -> Iterator[Path]:
        """The task's input as a local file, for as long as the block runs (`_reach`)."""
        with ExitStack() as stack:

            def enter() -> Path:
                return stack.enter_context(self.store.local_path(task.input_key))

            yield self._reach(task, claim, controls, enter)

    def _reach(self, task: TaskRecord, claim: str, controls: Controls, call: Callable[[], T]) -> T:
        """`call()`, tried again while the storage cannot be reached (STORAGE_RETRY_S),
        the task's lease kept alive meanwhile; then its UnavailableError goes up."""
        for wait in (*STORAGE_RETRY_S, None):
            try:
                return call()
            except UnavailableError as e:
                if wait is None:
                    raise
                log.warning("task %s: %s; trying again in %.0f s", task.id, e.message, wait)
                if controls.shutdown.wait(wait):
                    raise ShutdownRequested from e
                if controls.cancel.is_set():
                    raise CancelledError("cancelled by the user") from e
                if not self.jobs.heartbeat(task.id, claim):
                    raise CancelledError("the task is no longer ours") from e
        raise AssertionError("unreachable")

    def _download(self, task: TaskRecord, claim: str, url: str) -> None:
        """Media named by URL (AssemblyAI's `audio_url`) is fetched into the store first."""
        if self.jobs.progress(task.id, claim, "downloading", 0.0, 0.0):
            self.publish(task.id, "progress")
        limit = self.fetch.limit_bytes
        chunks = download(url, limit, self.fetch.allow_private)
        asyncio.run(self.store.put_stream(task.input_key, chunks, limit))

    def _fail(self, task: TaskRecord, claim: str, reason: str, code: str) -> None:
        if self.jobs.fail(task.id, claim, reason, webhook=self._owes_webhook(task), code=code):
            self.publish(task.id, "failed")
            self._tell(task.id)

    def _owes_webhook(self, task: TaskRecord) -> bool:
        return self.webhooks is not None and Webhook.of(task) is not None

    def _tell(self, task_id: str) -> None:
        if self.webhooks is not None:
            self.webhooks.task_finished(task_id)

    def resend_owed_webhooks(self) -> None:
        """Deliveries left owed by a process that stopped (see jobs/webhooks.py)."""
        if self.webhooks is not None:
            self.webhooks.sweep()
