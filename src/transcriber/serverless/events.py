"""The events the serverless worker takes, read and checked before any object is: the
microservice's own event, S3 notifications, and SQS or SNS messages that carry them;
and the result key each object's transcript is written under."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from transcriber.errors import InputError
from transcriber.options import parse_time


@dataclass(frozen=True, slots=True)
class Job:
    """One object to transcribe, as an event names it."""

    bucket: str
    key: str
    file_id: str | None = None
    """None: derived from the key (`Worker.file_id`)."""
    user_id: Any = None
    language: str = "auto"
    diarize: bool | None = None
    speakers: int | None = None
    task: str = "transcribe"
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """Something an event names that is not to be transcribed, and why."""

    reason: str
    bucket: str | None = None
    key: str | None = None

    def reply(self) -> dict[str, Any]:
        where = {} if self.key is None else {"bucket": self.bucket, "key": self.key}
        return {"status": "skipped", "reason": self.reason} | where


def jobs_from_event(event: dict[str, Any]) -> list[Job | Skip]:
    """Every object an event names, whichever of the three shapes it has, or why it is
    skipped; InputError, naming the problem, for an event of none of them."""
    with _malformed():
        return _jobs(event)


def jobs_from_record(record: dict[str, Any], index: int) -> list[Job | Skip]:
    """What `Records[index]` of an event names, as `jobs_from_event`."""
    with _malformed():
        return _record(record, index)


@contextmanager
def _malformed() -> Iterator[None]:
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # JSONDecodeError too
        detail = f"no {e}" if isinstance(e, KeyError) else str(e)
        raise InputError(f"event is malformed ({type(e).__name__}: {detail})") from e


def _jobs(event: dict[str, Any]) -> list[Job | Skip]:
    if not isinstance(event, dict):
        raise TypeError(f"an event is a JSON object, not {type(event).__name__}")
    if "s3_key" in event:
        return [_direct(event)]
    if event.get("Event") == "s3:TestEvent":  # S3 trying out a new notification
        return [Skip("s3:TestEvent: S3 checking a new notification, no object")]
    if event.get("Type") == "Notification" and "Message" in event:  # SNS, as SQS carries it
        return _jobs(json.loads(event["Message"]))
    records = event.get("Records")
    if not records:
        raise InputError("event names no object: expected s3_key and bucket, or S3 Records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise TypeError("Records must be a list of JSON objects")
    return [job for i, record in enumerate(records) for job in _record(record, i)]


def _record(record: dict[str, Any], index: int) -> list[Job | Skip]:
    if "s3" in record:
        return [_s3_record(record)]
    if "body" in record:  # SQS: the body is one of the other shapes, as JSON
        return _jobs(json.loads(record["body"]))
    if "Sns" in record:  # SNS: the message is an S3 notification, as JSON
        return _jobs(json.loads(record["Sns"]["Message"]))
    fields = ", ".join(sorted(str(k) for k in record))[:200] or "none"
    raise InputError(
        f"Records[{index}] is neither an S3 record (s3), an SQS message (body) nor an "
        f"SNS notification (Sns); its fields: {fields}"
    )


def _s3_record(record: dict[str, Any]) -> Job | Skip:
    s3 = record["s3"]
    # S3 notifications encode keys; S3's limit is on the key itself, so it is checked
    # decoded (a Cyrillic letter is 2 bytes, but 6 characters encoded).
    raw = s3["object"]["key"]
    key = _object_key(unquote_plus(raw) if isinstance(raw, str) else raw, "s3.object.key")
    bucket = _bucket(s3["bucket"]["name"], "s3.bucket.name")
    # Hand-made notifications (and older tests) carry no eventName: they mean an upload.
    event_name = str(record.get("eventName") or "ObjectCreated:")
    if not event_name.removeprefix("s3:").startswith("ObjectCreated:"):
        return Skip(f"{event_name}: only ObjectCreated events are transcribed", bucket, key)
    return _file(bucket, key)


def _file(bucket: str, key: str) -> Job | Skip:
    if key.endswith("/"):
        return Skip("a folder placeholder (the key ends in /), not a file", bucket, key)
    return Job(bucket, key)


def is_sqs_batch(event: Any) -> bool:
    """Messages delivered by an SQS event source mapping: each carries a messageId."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(r, dict) and "messageId" in r and "body" in r for r in records)
    )


def _direct(event: dict[str, Any]) -> Job | Skip:
    missing = [k for k in ("bucket", "s3_key") if not event.get(k)]
    if missing:
        raise InputError(f"event lacks {', '.join(missing)}")
    bucket = _bucket(event["bucket"], "bucket")
    key = _object_key(event["s3_key"], "s3_key")
    if isinstance(found := _file(bucket, key), Skip):
        return found
    file_id = event.get("file_id")
    if isinstance(file_id, bool) or not isinstance(file_id, (str, int, type(None))):
        raise InputError(f"file_id must be a string, got {_shown(file_id)}")
    return Job(
        bucket=bucket,
        key=key,
        file_id=str(file_id) if file_id not in (None, "") else None,
        user_id=event.get("user_id"),
        language=str(event.get("language") or "auto"),
        diarize=_flag(event.get("diarize"), "diarize"),
        speakers=_count(event.get("speakers")),
        task=str(event.get("task") or "transcribe"),
        start=_time(event.get("start"), "start"),
        end=_time(event.get("end"), "end"),
    )


MAX_KEY_BYTES = 1024
"""S3's limit on the length of an object key (UTF-8)."""
# What boto3 takes for a bucket name; S3 itself asks less of names made long ago.
BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


def _bucket(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field} must be a bucket name (a string), got {_shown(value)}")
    if not BUCKET_NAME.fullmatch(value):
        raise InputError(
            f"{field} {value[:80]!r} is not a bucket name: letters, digits, '.', '-' and '_'"
        )
    return value


def _object_key(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field} must be an object key (a string), got {_shown(value)}")
    if not value:
        raise InputError(f"{field} is empty")
    if len(value.encode()) > MAX_KEY_BYTES:
        raise InputError(f"{field} is longer than S3's {MAX_KEY_BYTES} bytes")
    return value


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {repr(value)[:80]}"


def _flag(value: Any, field: str) -> bool | None:
    """A yes or no, read strictly: `bool("false")` is True."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise InputError(f"{field} must be true or false, got {_shown(value)}")


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise InputError(f"speakers must be a whole number, got {value!r}")
    return int(value)


def _time(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise InputError(f"{field} must be seconds or [h:]mm:ss, got {_shown(value)}")
    try:
        return parse_time(value)
    except InputError as e:
        raise type(e)(f"{field}: {e.message}") from e


def result_key(prefix: str, file_id: str) -> str:
    """`<prefix><file_id>.json`; InputError, naming the file_id, where that cannot be a key:
    too long for S3, control characters, or empty, `.` or `..` segments (which some
    stores refuse and some clients resolve, so that the result would land elsewhere)."""
    key = f"{prefix}{file_id}.json"
    if not file_id:
        raise InputError("file_id is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in file_id):
        raise InputError(f"file_id {file_id[:80]!r} contains control characters")
    if any(part in ("", ".", "..") for part in file_id.split("/")):
        raise InputError(
            f"file_id {file_id[:80]!r} has an empty, '.' or '..' path segment; "
            "use letters, digits and single '/' between names"
        )
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InputError(
            f"file_id is too long: its result key would be {len(key.encode())} bytes, "
            f"and S3 allows {MAX_KEY_BYTES}"
        )
    return key


def default_file_id(key: str, prefix: str) -> str:
    """The file_id of an object an event names without one: its key, so that every object
    has a result of its own; for a key that cannot be a result key (see `result_key`),
    a digest of it."""
    try:
        result_key(prefix, key)
    except InputError:
        return "sha256-" + hashlib.sha256(key.encode()).hexdigest()
    return key
