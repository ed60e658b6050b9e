"""Webhooks: tell the client's server when a task has finished.

A task's webhook is part of its stored options, so it survives restarts and travels
to whichever worker runs the task. Delivery is at least once per finish: the UPDATE
that finishes the task also records that a delivery is owed (`webhook_due_at`), a
sender claims it for a lease before posting, and recording the answer clears it. A
process that dies after finishing a task, or while posting, leaves the delivery owed,
and the next sweep (any worker's, or the service's at its next start) sends it.

Delivery runs on its own thread, so a slow or dead receiver never holds up
transcription; it is tried a few times with a growing pause, and what the receiver
answered last is kept on the task (`webhook_status`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from transcriber.errors import OptionError
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.view import public
from transcriber.outbound import check_url, post_json, shown
from transcriber.signing import sign

log = logging.getLogger(__name__)

ATTEMPTS = 3
FIRST_PAUSE_S = 2.0
POST_TIMEOUT_S = 10.0
# Long enough for every attempt of one delivery; a sender silent for longer is dead.
LEASE_S = ATTEMPTS * POST_TIMEOUT_S + FIRST_PAUSE_S * 2**ATTEMPTS + 60.0
HEADER_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
)
"""An HTTP header name is a token of these (RFC 9110, 5.6.2)."""
RESERVED_HEADERS = frozenset({
    # Framing and connection headers the HTTP client sets from the request itself: a
    # client's value would contradict them (a Content-Length that is not the body's
    # makes every attempt fail before it is sent).
    "content-length", "content-type", "content-encoding", "transfer-encoding", "host",
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect",
    # The Standard Webhooks signature, which the service sets on every delivery.
    "webhook-id", "webhook-timestamp", "webhook-signature",
})  # fmt: skip


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
    """A checked Webhook from a request's fields (None without a URL); OptionError if the
    auth header could not be sent as given, FetchError if the URL is refused."""
    if header_name is None and header_value is None:
        if not url:
            return None
        check_url(url, allow_private)
        return Webhook(url, dialect=dialect)
    if not url:
        raise OptionError(
            "webhook_auth_header_name and webhook_auth_header_value need webhook_url:"
            " the header is sent only with a webhook"
        )
    if header_name is None or header_value is None:
        raise OptionError(
            "webhook_auth_header_name comes with webhook_auth_header_value: give both or neither"
        )
    if not header_name or not set(header_name) <= HEADER_NAME_CHARS:
        raise OptionError(
            f"webhook_auth_header_name {header_name[:80]!r} is not a plain header name"
            " (letters, digits and -_.!#$%&'*+^`|~, no spaces)"
        )
    if header_name.lower() in RESERVED_HEADERS:
        raise OptionError(
            f"webhook_auth_header_name {header_name!r} cannot be used: the service sets that"
            " header itself on every delivery; name a header of your own, such as X-Webhook-Secret"
        )
    # Surrounding spaces are not part of a header's value in HTTP; inside, only printable
    # ASCII and tabs can be sent.
    value = header_value.strip(" \t")
    if not all(c == "\t" or " " <= c <= "~" for c in value):
        raise OptionError(
            "webhook_auth_header_value must be one line of printable ASCII text"
            " (no line breaks, control characters or letters outside ASCII)"
        )
    check_url(url, allow_private)
    return Webhook(url, header_name, value, dialect)


def message_id(task: TaskRecord) -> str:
    """The Standard Webhooks `webhook-id` of a task's delivery: the same for every retry of
    one finish, a new one when a retried task finishes again."""
    finished = task.finished_at.timestamp() if task.finished_at else 0.0
    return f"msg_{task.id}_{int(finished * 1000)}"


class WebhookLedger(Protocol):
    """Where owed deliveries are kept: the job store."""

    def get(self, task_id: str, owner: str | None = None) -> TaskRecord | None: ...

    def webhooks_due(self, limit: int = 100) -> list[str]: ...

    def claim_webhook(self, task_id: str, lease_s: float) -> bool: ...

    def set_webhook_status(self, task_id: str, status: int) -> None: ...

    def webhook_secret(self, owner: str) -> str: ...


class WebhookSender:
    """Delivers owed webhooks on background threads and records the outcome on the task."""

    def __init__(
        self, ledger: WebhookLedger, allow_private: bool, pause_s: float = FIRST_PAUSE_S
    ) -> None:
        self.ledger = ledger
        self.allow_private = allow_private
        self.pause_s = pause_s
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def task_finished(self, task_id: str) -> bool:
        """Send the task's webhook if one is owed and no other sender holds it."""
        if not self.ledger.claim_webhook(task_id, LEASE_S):
            return False
        task = self.ledger.get(task_id)
        hook = Webhook.of(task) if task is not None else None
        if task is None or hook is None:  # deleted meanwhile, or owed by mistake
            self.ledger.set_webhook_status(task_id, 0)
            return False
        t = threading.Thread(target=self._deliver, args=(task, hook), daemon=True,
                             name=f"webhook-{task_id[:8]}")  # fmt: skip
        with self._lock:
            self._threads.add(t)
        t.start()
        return True

    def sweep(self) -> int:
        """Send every owed delivery that no live sender holds: those of a process that
        died after finishing a task or while posting. How many were started."""
        started = sum(self.task_finished(task_id) for task_id in self.ledger.webhooks_due())
        if started:
            log.info("sending %d owed webhook(s)", started)
        return started

    def _deliver(self, task: TaskRecord, hook: Webhook) -> None:
        try:
            status = self._send(task, hook)
            # Recorded whatever the answer, so that a delivery that was tried is not owed.
            self.ledger.set_webhook_status(task.id, status)
            level = logging.INFO if 200 <= status < 300 else logging.WARNING
            log.log(level, "webhook of task %s to %s: %s", task.id, shown(hook.url),
                    f"HTTP {status}" if status else "unreachable")  # fmt: skip
        except Exception:  # the job store is away: the delivery stays owed, for a sweep
            log.exception("webhook of task %s: its outcome could not be recorded", task.id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _send(self, task: TaskRecord, hook: Webhook) -> int:
        """Post the task's webhook, retrying; what the receiver answered last, 0 when it
        never answered or the request could not be made at all."""
        # From the job store: while it is away the delivery stays owed (see _deliver).
        secret = self.ledger.webhook_secret(task.owner)
        status, pause = 0, self.pause_s
        for attempt in range(1, ATTEMPTS + 1):
            try:
                status = self._post(task, hook, secret)
            except Exception as e:  # a request that cannot be made fails as a dead receiver does
                log.warning("webhook of task %s to %s could not be sent: %s: %s", task.id,
                            shown(hook.url), type(e).__name__, e)  # fmt: skip
                status = 0
            if 200 <= status < 300 or (400 <= status < 500 and status not in (408, 429)):
                break  # delivered, or refused in a way a retry would not change
            if attempt < ATTEMPTS:
                time.sleep(pause)
                pause *= 2
        return status

    def _post(self, task: TaskRecord, hook: Webhook, secret: str) -> int:
        body = json.dumps(hook.body(task), ensure_ascii=False).encode()
        # Signed afresh for each attempt (its time), under the same message id.
        headers = hook.headers() | sign(secret, message_id(task), body)
        return post_json(hook.url, body, headers, self.allow_private, timeout=POST_TIMEOUT_S)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for deliveries in flight (at shutdown, and in tests)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = list(self._threads)
            if not pending or time.monotonic() > deadline:
                return
            pending[0].join(max(0.0, deadline - time.monotonic()))
