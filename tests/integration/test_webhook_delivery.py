"""Webhook delivery against a real job store (SQLite) and a real HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.receiver import Receiver
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.webhooks import Webhook, WebhookSender


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[SqlJobStore]:
    store = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    yield store
    store.close()


def finished(jobs: SqlJobStore, webhook: dict[str, Any] | None, error: str | None = None) -> str:
    """A task that a worker has just finished, as it leaves it in the store."""
    options: dict[str, Any] = {"language": "ru"} | ({"webhook": webhook} if webhook else {})
    task = jobs.create("alice", "a.wav", "k/input", options, 2.0)
    held = jobs.claim_next()
    assert held is not None and held.id == task.id and held.claim
    owed = webhook is not None
    if error:
        assert jobs.fail(task.id, held.claim, error, webhook=owed)
    else:
        assert jobs.complete(task.id, held.claim, "r.json", "ru", 2.0, 1.0, webhook=owed)
    return task.id


def after(jobs: SqlJobStore, task_id: str) -> TaskRecord:
    task = jobs.get(task_id)
    assert task is not None
    return task


def test_retries_server_errors_then_records_the_answer(
    jobs: SqlJobStore, receiver: Receiver
) -> None:
    hook = Webhook(f"{receiver.url}/hook", "X-Key", "s3cr3t", "assemblyai")
    task_id = finished(jobs, hook.to_dict())
    receiver.statuses[:] = [503, 500]
    sender = WebhookSender(jobs, allow_private=True, pause_s=0.01)
    assert sender.task_finished(task_id)
    sender.drain()
    got = receiver.wait_for(3)
    assert [r.body for r in got] == [{"transcript_id": task_id, "status": "completed"}] * 3
    assert {r.headers["x-key"] for r in got} == {"s3cr3t"}
    assert (after(jobs, task_id).webhook_status, after(jobs, task_id).webhook_due_at) == (200, None)
    assert not sender.task_finished(task_id)  # delivered: a second finish notice sends nothing
    assert sender.sweep() == 0 and len(receiver.received) == 3


def test_gives_up_on_a_client_error_and_on_silence(jobs: SqlJobStore, receiver: Receiver) -> None:
    task_id = finished(jobs, {"url": f"{receiver.url}/h"}, error="a.wav: damaged")
    receiver.statuses[:] = [410]
    sender = WebhookSender(jobs, allow_private=True, pause_s=0.01)
    sender.task_finished(task_id)
    sender.drain()
    body = receiver.wait_for(1)[0].body
    assert (body["id"], body["status"], body["error"]) == (task_id, "failed", "a.wav: damaged")
    assert after(jobs, task_id).webhook_status == 410 and len(receiver.received) == 1

    dead = finished(jobs, {"url": "http://127.0.0.1:9/h"})
    sender.task_finished(dead)
    sender.drain()
    assert after(jobs, dead).webhook_status == 0
    assert jobs.webhooks_due() == []  # a delivery that was tried and failed is not owed


@pytest.mark.parametrize(
    "header", [("Content-Length", "9999"), ("X-Key", "пароль")], ids=["length", "not-ascii"]
)
def test_a_delivery_that_cannot_be_sent_fails_as_an_unreachable_one(
    jobs: SqlJobStore, receiver: Receiver, header: tuple[str, str]
) -> None:
    # Stored before submissions checked the auth header: the HTTP client raises on it.
    hook = Webhook(f"{receiver.url}/hook", *header, "assemblyai")
    task_id = finished(jobs, hook.to_dict())
    sender = WebhookSender(jobs, allow_private=True, pause_s=0.01)
    assert sender.task_finished(task_id)
    sender.drain()
    assert (after(jobs, task_id).webhook_status, after(jobs, task_id).webhook_due_at) == (0, None)
    assert jobs.webhooks_due() == [] and sender.sweep() == 0  # tried and failed: not owed


def test_a_sweep_sends_what_a_stopped_process_owed_once(
    jobs: SqlJobStore, receiver: Receiver
) -> None:
    # Finished by a process that died before it could post: nothing was sent.
    owed = [finished(jobs, {"url": f"{receiver.url}/{i}"}) for i in range(3)]
    quiet = finished(jobs, None)
    first, second = (WebhookSender(jobs, allow_private=True) for _ in range(2))
    assert first.sweep() == 3
    assert second.sweep() == 0  # held by the first sender meanwhile
    first.drain()
    assert sorted(r.path for r in receiver.wait_for(3)) == ["/0", "/1", "/2"]
    assert [after(jobs, t).webhook_status for t in owed] == [200] * 3
    assert second.sweep() == 0 and len(receiver.received) == 3
    assert after(jobs, quiet).webhook_status is None


def test_tasks_without_a_webhook_send_nothing(jobs: SqlJobStore, receiver: Receiver) -> None:
    task_id = finished(jobs, None)
    sender = WebhookSender(jobs, allow_private=True)
    assert not sender.task_finished(task_id)
    assert not sender.task_finished("unknown")
    sender.drain()
    assert receiver.received == [] and after(jobs, task_id).webhook_status is None
