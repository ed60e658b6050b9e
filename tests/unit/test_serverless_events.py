"""The serverless worker's events and result keys, which need no S3 (the worker itself is
tested against SeaweedFS in tests/integration/test_serverless.py)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote_plus

import pytest

from transcriber.errors import InputError
from transcriber.serverless import Job, Skip, default_file_id, jobs_from_event, result_key


def test_an_object_without_a_file_id_is_named_by_its_whole_key() -> None:
    assert default_file_id("calls/jan/rec.flac", "results/") == "calls/jan/rec.flac"
    assert result_key("results/", "calls/jan/rec.flac") == "results/calls/jan/rec.flac.json"
    # Keys that cannot be result keys get a digest: still one result per object.
    odd = ["a/../b.wav", "a//b.wav", "./b.wav", "tab\t.wav", "x" * 1100]
    ids = [default_file_id(k, "results/") for k in odd]
    assert all(i.startswith("sha256-") and len(i) == 71 for i in ids)
    assert len(set(ids)) == len(odd)
    assert result_key("results/", "x" * 1010) == f"results/{'x' * 1010}.json"


@pytest.mark.parametrize(
    ("file_id", "message"),
    [
        ("x" * 1100, "file_id is too long: its result key would be 1113 bytes"),
        ("../../in/ru", "file_id '../../in/ru' has an empty, '.' or '..' path segment"),
        ("/abs", "has an empty, '.' or '..' path segment"),
        ("a\0b", "file_id 'a\\x00b' contains control characters"),
        ("", "file_id is empty"),
    ],
)
def test_a_file_id_that_cannot_name_a_result_is_refused(file_id: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        result_key("results/", file_id)


def _notice(bucket: Any, key: Any) -> dict[str, Any]:
    return {"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


def test_a_long_unicode_key_is_measured_decoded() -> None:
    # 412 bytes as S3 stores it, 1212 characters as the notification encodes it: a
    # valid key (it was refused as longer than S3's 1024 bytes, and went to the DLQ).
    key = "uploads/" + "ж" * 200 + " 1.wav"
    assert jobs_from_event(_notice("b", quote_plus(key))) == [Job("b", key)]
    with pytest.raises(InputError, match="longer than S3's 1024 bytes"):
        jobs_from_event(_notice("b", quote_plus("ж" * 513)))


def test_sns_carries_s3_notifications_as_sqs_does() -> None:
    message = {"Type": "Notification", "Message": json.dumps(_notice("b", "a.wav"))}
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": message}]}
    # S3 → SNS → SQS without raw delivery: the SQS body is the SNS envelope.
    envelope = {"Type": "Notification", "Message": json.dumps(_notice("b", "c.wav"))}
    sqs = {"Records": [{"messageId": "m", "body": json.dumps(envelope)}]}
    assert jobs_from_event(sns) == [Job("b", "a.wav")]
    assert jobs_from_event(sqs) == [Job("b", "c.wav")]


def test_s3s_test_event_is_skipped_wherever_it_comes() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent",
                  "Time": "2024-01-01T00:00:00.000Z", "Bucket": "b"}  # fmt: skip
    skip = Skip("s3:TestEvent: S3 checking a new notification, no object")
    assert jobs_from_event(test_event) == [skip]
    assert jobs_from_event({"Records": [{"messageId": "t", "body": json.dumps(test_event)}]}) == [
        skip
    ]
    assert skip.reply() == {"status": "skipped", "reason": skip.reason}


def test_a_record_of_no_known_kind_is_named() -> None:
    with pytest.raises(
        InputError, match=r"Records\[1\] is neither an S3 record .* its fields: foo"
    ):
        jobs_from_event({"Records": [_notice("b", "a.wav")["Records"][0], {"foo": 1}]})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"bucket": ["b"], "s3_key": "a.wav"}, "bucket must be a bucket name (a string), got list"),
        ({"bucket": 123, "s3_key": "a.wav"}, "bucket must be a bucket name (a string), got int"),
        ({"bucket": "Bad_Bucket!", "s3_key": "a.wav"}, "bucket 'Bad_Bucket!' is not a bucket name"),
        ({"bucket": "b", "s3_key": {"a": 1}}, "s3_key must be an object key (a string), got dict"),
        ({"bucket": "b", "s3_key": "k" * 1025}, "s3_key is longer than S3's 1024 bytes"),
        ({"bucket": "b", "s3_key": "a.wav", "file_id": ["x"]}, "file_id must be a string"),
        ({"bucket": "b", "s3_key": "a.wav", "diarize": "maybe"}, "diarize must be true or false"),
        ({"bucket": "b", "s3_key": "a.wav", "diarize": 2}, "diarize must be true or false"),
        ({"bucket": "b", "s3_key": "a.wav", "start": [1]}, "start must be seconds or [h:]mm:ss"),
        ({"bucket": "b", "s3_key": "a.wav", "end": "soon"}, "end: 'soon' is not a time"),
        (_notice("b", None), "s3.object.key must be an object key (a string), got NoneType"),
        (_notice("b", 7), "s3.object.key must be an object key (a string), got int"),
        (_notice("b", ""), "s3.object.key is empty"),
        (_notice(7, "a.wav"), "s3.bucket.name must be a bucket name (a string), got int"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(event: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        jobs_from_event(event)


def test_diarize_is_read_strictly() -> None:
    for given, read in [("false", False), ("False", False), ("0", False), (0, False),
                        (False, False), ("true", True), ("1", True), (1, True), (True, True),
                        (None, None)]:  # fmt: skip
        (job,) = jobs_from_event({"bucket": "b", "s3_key": "a.wav", "diarize": given})
        assert isinstance(job, Job) and job.diarize is read, given
