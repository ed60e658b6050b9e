"""Webhooks: tell the client's server when a task has finished.

A task's webhook is part of its stored options, so it survives restarts and travels
to whichever worker runs the task. Delivery runs on its own thread, so a slow or dead
receiver never holds up transcription; it is tried a few times with a growing pause,
and what the receiver answered last is kept on the task (`webhook_status`). Delivery
is at most once per finish: a worker that dies after finishing a task does not send it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transcriber.errors import OptionError
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.view import public
from transcriber.outbound import check_url, post_json, shown

log = logging.getLogger(__name__)

ATTEMPTS = 3
FIRST_PAUSE_S = 2.0
HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    header_name: str | None = None
    header_value: str | None = None
    dialect: str = "tasks"
    """`tasks`: the body is the task as `/api/tasks/{id}` shows it; `assemblyai`:
    `{"transcript_id", "status"}` as AssemblyAI sends it."""

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "header_name": self.header_name,
                "header_value": self.header_value, "dialect": self.dialect}  # fmt: skip

    @staticmethod
    def of(task: TaskRecord) -> Webhook | None:
        raw = task.options.get("webhook")
        if isinstance(raw, str) and raw:  # stored by versions before delivery existed
            return Webhook(raw)
        if isinstance(raw, dict) and raw.get("url"):
            return Webhook(str(raw["url"]), raw.get("header_name"), raw.get("header_value"),
                           str(raw.get("dialect") or "tasks"))  # fmt: skip
        return None

    def body(self, task: TaskRecord) -> dict[str, Any]:
        if self.dialect == "assemblyai":
            status = "completed" if task.status == TaskStatus.completed else "error"
            return {"transcript_id": task.id, "status": status}
        return public(task)

    def headers(self) -> dict[str, str]:
        if self.header_name and self.header_value is not None:
            return {self.header_name: self.header_value}
        return {}


def make_webhook(
    url: str | None,
    allow_private: bool,
    header_name: str | None = None,
    header_value: str | None = None,
    dialect: str = "tasks",
) -> Webhook | None:
    """A checked Webhook from a request's fields (None without a URL); FetchError if refused."""
    if not url:
        return None
    check_url(url, allow_private)
    if header_value is not None and any(c in header_value for c in "\r\n\x00"):
        raise OptionError("webhook_auth_header_value must be one line of text")
    if header_name is not None and (
        not header_name or not set(header_name) <= HEADER_NAME_CHARS or header_value is None
    ):
        raise OptionError(
            "webhook_auth_header_name must be a plain header name (letters, digits, '-')"
            " and comes with webhook_auth_header_value"
        )
    return Webhook(url, header_name, header_value, dialect)


class WebhookSender:
    """Delivers webhooks on background threads and records the outcome on the task."""

    def __init__(
        self,
        get_task: Callable[[str], TaskRecord | None],
        record: Callable[[str, int], None],
        allow_private: bool,
        pause_s: float = FIRST_PAUSE_S,
    ) -> None:
        self._get, self._record = get_task, record
        self.allow_private = allow_private
        self.pause_s = pause_s
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def task_finished(self, task_id: str) -> None:
        task = self._get(task_id)
        hook = Webhook.of(task) if task is not None else None
        if task is None or hook is None:
            return
        t = threading.Thread(target=self._deliver, args=(task, hook), daemon=True,
                             name=f"webhook-{task_id[:8]}")  # fmt: skip
        with self._lock:
            self._threads.add(t)
        t.start()

    def _deliver(self, task: TaskRecord, hook: Webhook) -> None:
        try:
            status, pause = 0, self.pause_s
            for attempt in range(1, ATTEMPTS + 1):
                status = post_json(hook.url, hook.body(task), hook.headers(), self.allow_private)
                if 200 <= status < 300 or (400 <= status < 500 and status not in (408, 429)):
                    break  # delivered, or refused in a way a retry would not change
                if attempt < ATTEMPTS:
                    time.sleep(pause)
                    pause *= 2
            self._record(task.id, status)
            level = logging.INFO if 200 <= status < 300 else logging.WARNING
            log.log(level, "webhook of task %s to %s: %s", task.id, shown(hook.url),
                    f"HTTP {status}" if status else "unreachable")  # fmt: skip
        except Exception:  # a webhook must never take the process down
            log.exception("webhook of task %s failed", task.id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for deliveries in flight (at shutdown, and in tests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = list(self._threads)
            if not pending or time.monotonic() > deadline:
                return
            pending[0].join(max(0.0, deadline - time.monotonic()))
