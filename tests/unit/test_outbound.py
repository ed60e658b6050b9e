"""Calls to client-given URLs: the address policy, downloads and webhook delivery,
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.servers.receiver import Receiver
from tests.unit.test_assemblyai_shapes import record
from transcriber.errors import FetchError, OptionError, UploadTooLargeError
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.webhooks import Webhook, WebhookSender, make_webhook
from transcriber.outbound import check_url, download, filename_of, shown


def test_urls_are_shown_without_their_query() -> None:
    signed = "https://user:pw@bucket.s3.amazonaws.com/a%20b.mp3?X-Amz-Signature=abc"
    assert shown(signed) == "https://bucket.s3.amazonaws.com/a%20b.mp3"
    assert filename_of(signed) == "a b.mp3"
    assert filename_of("https://host/") == "download"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/a.mp3", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("just text", "not an http(s) URL"),
        ("http://127.0.0.1:8086/api/tasks", "private address (127.0.0.1)"),
        ("http://localhost/x", "private address"),
        ("http://10.1.2.3/a.wav", "private address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data", "private address (169.254.169.254)"),
        ("http://[::1]/a.wav", "private address (::1)"),
        ("http://host.invalid/a.wav", "is not known"),
        ("http://example.org:99999/a.wav", "port is not a valid number"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, allow_private=False)


def test_private_addresses_allowed_when_configured() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True) == ("127.0.0.1", 9)


async def _collect(url: str, limit: int) -> bytes:
    return b"".join([block async for block in download(url, limit, allow_private=True)])


def test_download_streams_and_enforces_limit_and_status(receiver: Receiver, tmp_path: Path) -> None:
    media = tmp_path / "m.bin"
    media.write_bytes(b"x" * 3_000_000)
    receiver.files["m.bin"] = media
    assert asyncio.run(_collect(f"{receiver.url}/m.bin?sig=1", 10_000_000)) == media.read_bytes()
    with pytest.raises(UploadTooLargeError, match="larger than the limit of 1 MB"):
        asyncio.run(_collect(f"{receiver.url}/m.bin", 1_000_000))
    with pytest.raises(FetchError, match=r"/gone.mp3 answered HTTP 404"):
        asyncio.run(_collect(f"{receiver.url}/gone.mp3?X-Amz-Signature=secret", 10))
    with pytest.raises(FetchError, match="could not be downloaded: the server could not be"):
        asyncio.run(_collect("http://127.0.0.1:9/none.mp3", 10))
    with pytest.raises(FetchError, match="private address"):  # the policy holds for downloads
        asyncio.run(anext(download(f"{receiver.url}/m.bin", 10, allow_private=False)))


def test_webhook_fields_are_checked() -> None:
    assert make_webhook(None, False) is None
    with pytest.raises(FetchError, match="private address"):
        make_webhook("http://127.0.0.1/hook", allow_private=False)
    with pytest.raises(OptionError, match="plain header name"):
        make_webhook("http://127.0.0.1/hook", True, "X Bad\n", "v")
    with pytest.raises(OptionError, match="one line of text"):
        make_webhook("http://127.0.0.1/hook", True, "X-Key", "a\r\nX-Evil: 1")
    with pytest.raises(OptionError, match="comes with webhook_auth_header_value"):
        make_webhook("http://127.0.0.1/hook", True, "X-Key", None)


class Tasks:
    def __init__(self, task: TaskRecord) -> None:
        self.task = task
        self.recorded: list[tuple[str, int]] = []

    def get(self, task_id: str) -> TaskRecord | None:
        return self.task if task_id == self.task.id else None

    def record(self, task_id: str, status: int) -> None:
        self.recorded.append((task_id, status))


def test_webhook_retries_server_errors_then_records_the_answer(receiver: Receiver) -> None:
    hook = Webhook(f"{receiver.url}/hook", "X-Key", "s3cr3t", "assemblyai")
    tasks = Tasks(record(TaskStatus.completed, webhook=hook.to_dict()))
    receiver.statuses[:] = [503, 500]
    sender = WebhookSender(tasks.get, tasks.record, allow_private=True, pause_s=0.01)
    sender.task_finished("t1")
    sender.drain()
    got = receiver.wait_for(3)
    assert [r.body for r in got] == [{"transcript_id": "t1", "status": "completed"}] * 3
    assert {r.headers["x-key"] for r in got} == {"s3cr3t"}
    assert tasks.recorded == [("t1", 200)]


def test_webhook_gives_up_on_a_client_error_and_on_silence(receiver: Receiver) -> None:
    tasks = Tasks(record(TaskStatus.failed, webhook={"url": f"{receiver.url}/h"}))
    receiver.statuses[:] = [410]
    sender = WebhookSender(tasks.get, tasks.record, allow_private=True, pause_s=0.01)
    sender.task_finished("t1")
    sender.drain()
    body = receiver.wait_for(1)[0].body
    assert (body["id"], body["status"], body["error"]) == ("t1", "failed", "a.wav: damaged")
    assert tasks.recorded == [("t1", 410)] and len(receiver.received) == 1

    dead = Tasks(record(TaskStatus.completed, webhook={"url": "http://127.0.0.1:9/h"}))
    sender = WebhookSender(dead.get, dead.record, allow_private=True, pause_s=0.01)
    sender.task_finished("t1")
    sender.drain()
    assert dead.recorded == [("t1", 0)]


def test_tasks_without_a_webhook_send_nothing(receiver: Receiver) -> None:
    tasks = Tasks(record(TaskStatus.completed))
    sender = WebhookSender(tasks.get, tasks.record, allow_private=True)
    sender.task_finished("t1")
    sender.task_finished("unknown")
    sender.drain()
    assert tasks.recorded == [] and receiver.received == []
