"""The service over each Store: media byte ranges, a lost input, and the whole flow on S3."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_client
from tests.integration.test_api import JFK, assert_error, upload, wait
from tests.servers.relay import Relay
from tests.servers.s3 import REGION, S3Server
from transcriber.storage import from_url


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return f"file://{tmp_path / 'store'}"
    return s3_url(request.getfixturevalue("s3_server"), request.getfixturevalue("monkeypatch"))


def s3_url(server: S3Server, monkeypatch: pytest.MonkeyPatch, bucket: str = "") -> str:
    """A store in a fresh prefix; the credentials go through boto3's chain, as in production."""
    server.env(monkeypatch)
    bucket = bucket or server.bucket()
    return (
        f"s3://{bucket}/svc-{uuid.uuid4().hex[:8]}?endpoint_url={server.endpoint}&region={REGION}"
    )


def test_media_ranges(storage_url: str, tmp_path: Path, model_cache: Path, eval_root: Path) -> None:
    media = (eval_root / JFK).read_bytes()
    size = len(media)
    with make_client(tmp_path, model_cache, workers=0, storage_url=storage_url) as c:
        task = upload(c, eval_root / JFK).json()  # stays queued: no worker
        url = f"/api/tasks/{task['id']}/media"

        whole = c.get(url)
        assert whole.status_code == 200 and whole.content == media
        assert whole.headers["content-type"] == "audio/flac"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-length"] == str(size)
        assert "content-range" not in whole.headers

        for asked, start, stop in [("bytes=0-99", 0, 100), ("bytes=1000-2047", 1000, 2048),
                                   ("bytes=-1", size - 1, size), ("bytes=100000-", 100000, size),
                                   ("bytes=5-99999999", 5, size)]:  # fmt: skip
            part = c.get(url, headers={"Range": asked})
            assert part.status_code == 206, asked
            assert part.content == media[start:stop], asked
            assert part.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
            assert part.headers["content-length"] == str(stop - start)
            assert part.headers["content-type"] == "audio/flac"

        for asked in (f"bytes={size}-", "bytes=-0", "bytes=9-3"):
            refused = c.get(url, headers={"Range": asked})
            assert_error(refused, 416, "range_not_satisfiable")
            assert refused.headers["content-range"] == f"bytes */{size}"

        for ignored in ({"Range": "bytes=0-1,5-6"}, {"Range": "pages=1-2"},
                        {"Range": "bytes=0-99", "If-Range": '"some-etag"'}):  # fmt: skip
            full = c.get(url, headers=ignored)
            assert full.status_code == 200 and full.content == media, ignored

        assert c.delete(f"/api/tasks/{task['id']}").status_code == 200  # cancels, drops files
        assert_error(c.get(url), 404, "not_found")
        assert_error(c.get(url, headers={"Range": "bytes=0-9"}), 404, "not_found")


def test_a_lost_input_fails_its_task(
    storage_url: str, tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    with make_client(tmp_path, model_cache, workers=0, storage_url=storage_url) as c:
        task = upload(c, eval_root / JFK).json()
    from_url(storage_url).delete_prefix(f"{task['id']}/input")  # lost behind the service's back

    with make_client(tmp_path, model_cache, workers=1, storage_url=storage_url) as c:
        done = wait(c, task["id"])
        assert done["status"] == "failed"
        assert done["error"] == f"{task['filename']}: not in the store"
        assert_error(c.post(f"/api/tasks/{task['id']}/retry"), 409, "conflict")


@pytest.mark.slow
def test_the_service_on_s3(
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_cache: Path,
    eval_root: Path,
) -> None:
    bucket = s3_server.bucket()
    url = s3_url(s3_server, monkeypatch, bucket)
    prefix = url.split("?")[0].removeprefix(f"s3://{bucket}/") + "/"
    media = (eval_root / JFK).read_bytes()

    def objects() -> set[str]:
        listed = s3_server.client.list_objects_v2(Bucket=bucket)
        return {o["Key"] for o in listed.get("Contents", ())}

    with make_client(tmp_path, model_cache, workers=1, storage_url=url) as c:
        assert c.get("/ready").json()["checks"]["storage"] == "ok"
        created = upload(c, eval_root / JFK, language="en")
        assert created.status_code == 202, created.text
        task_id = created.json()["id"]
        done = wait(c, task_id)
        assert done["status"] == "completed", done

        srt = c.get(f"/api/tasks/{task_id}/result", params={"format": "srt"})
        assert srt.status_code == 200 and "country" in srt.text.lower()
        part = c.get(f"/api/tasks/{task_id}/media", headers={"Range": "bytes=100-299"})
        assert part.status_code == 206 and part.content == media[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{len(media)}"
        stored = objects()
        assert f"{prefix}{task_id}/input" in stored
        assert all(k.startswith(f"{prefix}{task_id}/") for k in stored), stored
        assert len(stored) >= 2  # the input and the result
        assert (tmp_path / "store").exists() is False  # nothing went to the local default

        assert c.delete(f"/api/tasks/{task_id}").status_code == 204
        assert objects() == set()
        assert_error(c.get(f"/api/tasks/{task_id}"), 404, "not_found")


@pytest.mark.slow
def test_a_storage_outage_is_waited_out_on_the_same_attempt(
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_cache: Path,
    eval_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The object store is out of reach when the worker takes the task, and comes back:
    # the task waits for it on its first attempt instead of failing.
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]))
    url = s3_url(s3_server, monkeypatch).replace(s3_server.endpoint, relay.endpoint)
    caplog.set_level(logging.WARNING, logger="transcriber.jobs.worker")
    try:
        with make_client(tmp_path, model_cache, workers=0, storage_url=url) as c:
            task_id = upload(c, eval_root / JFK, language="en").json()["id"]
        relay.cut()
        with make_client(tmp_path, model_cache, workers=1, storage_url=url) as c:
            deadline = time.monotonic() + 120
            while "trying again in" not in caplog.text:
                assert time.monotonic() < deadline, (
                    c.get(f"/api/tasks/{task_id}").json(),
                    caplog.text,
                )
                time.sleep(0.05)
            assert c.get(f"/api/tasks/{task_id}").json()["status"] == "processing"
            relay.restore()
            done = wait(c, task_id)
            assert done["status"] == "completed" and done["attempts"] == 1, done
            srt = c.get(f"/api/tasks/{task_id}/result", params={"format": "srt"})
            assert srt.status_code == 200 and "country" in srt.text.lower()
    finally:
        relay.close()


def test_a_delete_the_store_refuses_keeps_the_task_for_a_retry(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_cache: Path,
    eval_root: Path,
) -> None:  # fmt: skip
    # The object store is out of reach at DELETE: 503, and the task is still listed, so
    # the client's retry deletes its files too (the row went first, and the media and
    # transcript stayed in the store for ever, under no task).
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]))
    url = s3_url(s3_server, monkeypatch).replace(s3_server.endpoint, relay.endpoint)
    try:
        with make_client(tmp_path, model_cache, workers=1, storage_url=url) as c:
            task_id = upload(c, eval_root / JFK, language="en").json()["id"]
            assert wait(c, task_id)["status"] == "completed"
            relay.cut()
            assert_error(c.delete(f"/api/tasks/{task_id}"), 503, "unavailable")
            assert c.get(f"/api/tasks/{task_id}").json()["status"] == "completed"
            relay.restore()
            assert c.delete(f"/api/tasks/{task_id}").status_code == 204
            assert c.get(f"/api/tasks/{task_id}").status_code == 404
        store = from_url(url)
        assert not store.exists(f"{task_id}/input") and not store.exists(f"{task_id}/result.json")
    finally:
        relay.close()


def test_a_worker_that_lost_its_task_writes_nothing(
    tmp_path: Path, model_cache: Path, eval_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The worker stalls past its lease after transcribing; meanwhile another finishes the
    # task and its owner deletes it. The stalled worker then must not write its result
    # back (an orphan in the store, or a transcript written over the other's).
    caplog.set_level(logging.INFO, logger="transcriber.jobs.worker")
    with make_client(tmp_path, model_cache, workers=1) as c:
        services = c.app.state.services  # type: ignore[attr-defined]
        real = services.pipeline.run

        def run_then_lose_the_task(path: Path, *args: Any, **kwargs: Any) -> Any:
            transcript = real(path, *args, **kwargs)
            for task in services.jobs.list_tasks(None, None, 10, 0)[0]:
                services.jobs.delete(task.id)
                services.store.delete_prefix(task.id)
            return transcript

        services.pipeline.run = run_then_lose_the_task
        task_id = upload(c, eval_root / JFK, language="en").json()["id"]
        deadline = time.monotonic() + 120
        while f"task {task_id} cancelled" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
        assert_error(c.get(f"/api/tasks/{task_id}"), 404, "not_found")
    assert not (tmp_path / "store" / task_id).exists()
