"""The Redis side of the Celery queue: the event relay, readiness, and bad queue URLs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.integration.conftest import make_client
from tests.servers.redis import free_port
from transcriber.config import Settings
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.events_redis import CHANNEL, RedisEventBus


def test_events_cross_processes_through_redis(redis_url: str) -> None:
    worker_side = RedisEventBus(redis_url, listen=False)  # a worker publishes only
    api_side = RedisEventBus(redis_url)
    sent = TaskEvent("t-1", "key-a", "progress", {"id": "t-1", "progress": 0.5, "stage": "asr"})

    async def receive() -> list[TaskEvent]:
        got: list[TaskEvent] = []
        async with api_side.subscribe(task_id="t-1") as queue:
            deadline = time.monotonic() + 10
            while worker_side._redis.pubsub_numsub(CHANNEL)[0][1] < 1:  # the relay listens
                assert time.monotonic() < deadline, "the relay never subscribed"
                await asyncio.sleep(0.01)
            worker_side._redis.publish(CHANNEL, b"not json")  # ignored, not fatal
            worker_side.publish(TaskEvent("t-2", "key-a", "progress", {}))  # another task
            worker_side.publish(sent)
            got.append(await asyncio.wait_for(queue.get(), 10))
        return got

    try:
        assert asyncio.run(receive()) == [sent]
    finally:
        worker_side.close()
        api_side.close()


def test_ready_reports_an_unreachable_queue(tmp_path: Path, model_cache: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with make_client(tmp_path, model_cache, workers=0, queue_url=closed) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        queue = r.json()["checks"]["queue"]
        assert "unreachable" in queue and closed in queue


def test_unknown_queue_url_is_refused(tmp_path: Path, model_cache: Path) -> None:
    # Refused with the settings, before any app is made (the CLI prints it as one line).
    with pytest.raises(ValidationError, match=r"queue_url\n.*redis://.*'amqp://guest"):
        make_client(tmp_path, model_cache, queue_url="amqp://guest@localhost//")


def test_password_never_shows() -> None:
    from transcriber.jobs.queue.celery import safe_url

    assert safe_url("redis://:hunter2@cache:6380/1") == "redis://:***@cache:6380/1"
    assert safe_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert Settings(_env_file=None).queue_url == "embedded://"  # type: ignore[call-arg]
