"""CeleryQueue: notices of queued tasks go to Celery workers over Redis.

`TRANSCRIBER_QUEUE_URL=redis://host:6379/0`. The API nodes only send notices
(`transcribe(task_id)`); `transcriber worker` processes consume them (see
`celery_worker.py`). The job store stays the one truth about a task, so the
messages are acknowledged on receipt and recovery is the job store's lease, not
the broker's redelivery: a lost notice is re-sent by a worker's sweep, and a
repeated one finds the task already claimed and does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from transcriber.errors import MissingExtraError, UnavailableError

log = logging.getLogger(__name__)

TASK_NAME = "transcriber.transcribe"
QUEUE_NAME = "transcriber"
_EXTRA = "pip install 'video-transcriber[celery]'"


def celery_app(url: str) -> Any:
    """A Celery app on the broker at `url`, configured for long, store-tracked tasks."""
    try:
        from celery import Celery
    except ImportError as e:
        raise MissingExtraError(f"the queue {url!r} needs Celery: {_EXTRA}") from e
    app = Celery("transcriber", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE_NAME,
        task_ignore_result=True,
        task_acks_late=False,  # the job store, not the broker, recovers interrupted work
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
    )
    return app


def redis_client(url: str) -> Any:
    try:
        import redis
    except ImportError as e:
        raise MissingExtraError(f"the queue {url!r} needs the redis client: {_EXTRA}") from e
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class CeleryQueue:
    runs_tasks = True  # on `transcriber worker` processes

    def __init__(self, url: str) -> None:
        self.url = url
        self.app = celery_app(url)
        self._redis = redis_client(url)

    def start(self) -> None:
        """API nodes run no workers; `transcriber worker` processes do."""

    def notify(self, task_id: str) -> None:
        try:
            self.app.send_task(TASK_NAME, args=[task_id], queue=QUEUE_NAME)
        except Exception as e:  # the task is safe in the job store; a worker's sweep re-sends
            log.warning("could not send task %s to %s: %s", task_id, safe_url(self.url), e)

    def pending(self) -> int:
        """Notices waiting in the broker (not yet taken by a worker)."""
        return int(self._redis.llen(QUEUE_NAME))

    def cancel(self, task_id: str) -> None:
        """Nothing to send: the worker sees the cancelled status at its next heartbeat."""

    def check(self) -> None:
        try:
            self._redis.ping()
        except Exception as e:
            raise UnavailableError(f"the queue at {safe_url(self.url)} is unreachable: {e}") from e

    def stop(self) -> None:
        self._redis.close()
