"""RedisEventBus: task events shared by every API node and worker through Redis pub/sub.

A worker process publishes its progress to one channel; every API node listens
on it and hands each event to its own WebSocket subscribers. Events published by
an API node (cancelled, deleted) take the same road, so each node sees each
event exactly once, whichever process it came from.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict
from typing import Any

from transcriber.jobs.events import EventBus, TaskEvent
from transcriber.jobs.queue.celery import redis_client, safe_url

log = logging.getLogger(__name__)
CHANNEL = "transcriber:events"


class RedisEventBus(EventBus):
    def __init__(self, url: str, listen: bool = True) -> None:
        super().__init__()
        self.url = url
        self._redis: Any = redis_client(url)
        self._closing = threading.Event()
        self._pubsub: Any = None
        self._thread: threading.Thread | None = None
        if listen:
            self._thread = threading.Thread(target=self._listen, name="events", daemon=True)
            self._thread.start()

    def publish(self, event: TaskEvent) -> None:
        try:
            self._redis.publish(CHANNEL, json.dumps(asdict(event), default=str))
        except Exception as e:  # progress is advisory; the job store has the state
            log.warning("could not publish a %s event to %s: %s", event.kind, safe_url(self.url), e)

    def _listen(self) -> None:
        delay = 0.5
        while not self._closing.is_set():
            try:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(CHANNEL)
                delay = 0.5
                while not self._closing.is_set():
                    msg = self._pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self._deliver(msg["data"])
            except Exception as e:
                if self._closing.is_set():
                    return
                log.warning("event relay lost %s (%s); reconnecting", safe_url(self.url), e)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _deliver(self, raw: bytes | str) -> None:
        try:
            event = TaskEvent(**json.loads(raw))
        except (TypeError, ValueError) as e:
            log.warning("ignoring a malformed event: %s", e)
            return
        super().publish(event)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pubsub is not None:
            self._pubsub.close()
        self._redis.close()
