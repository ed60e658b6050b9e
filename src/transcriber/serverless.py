"""The serverless worker: the S3-event contract of the Lambda transcription microservice.

`lambda_handler(event, context)` accepts
- the microservice's own event: `{"bucket", "s3_key", "file_id", "user_id"}`, with optional
  `language`, `diarize`, `speakers`, `task` (transcribe or translate) and `start`/`end`
  (seconds, or `[h:]mm:ss`: only that part of the file);
- an S3 notification: `{"Records": [{"s3": {"bucket": {"name"}, "object": {"key"}}}]}`,
  of which only `ObjectCreated:*` records (or records without an `eventName`) that
  name a file, not a folder placeholder (a key ending in `/`), are transcribed; the
  others are answered `{"status": "skipped", "reason"}`;
- SQS messages whose bodies are either of those, and SNS notifications (`Records[].Sns`,
  or an SQS body that is one) whose `Message` is an S3 notification. S3's
  `s3:TestEvent`, sent when a notification is set up, is skipped. A record of any
  other kind is an error that names it. A batch from an SQS event source
  (messages with a `messageId`) answers `batchItemFailures` too, naming the messages
  that failed, so that only they are retried (ReportBatchItemFailures).

Each object is streamed to a temporary file, transcribed offline, and the result is
written to `<bucket>/<S3_RESULT_PREFIX><file_id>.json`, where `file_id` is the event's or,
when it gives none (S3 notifications never do), the object's whole key, so that objects
with the same file name in other folders, or with another extension, do not share a
result (`calls/jan/rec.flac` → `results/calls/jan/rec.flac.json`). `{"status": "completed",
"file_id", "user_id", "source", "options"}` plus the transcript's JSON document (text,
language, segments with speakers and words, speakers, metadata); `source` has the
object's ETag (and version), so that a result already complete for the same object and
options is reused, not made again (`"reused": true`). Media the worker cannot use, or an
object too large, gives `{"status": "failed", "error": reason}` at the same key, and the
handler returns normally, so the platform does not retry a file that cannot succeed.
Trouble reaching S3 raises, so the platform retries: every record of a notification
is run first, and the failures are raised together (an ExceptionGroup); in an SQS
batch, the message is named in `batchItemFailures`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from transcriber.config import Settings
from transcriber.domain import TranscriptionOptions
from transcriber.errors import InputError, TranscriberError, UploadTooLargeError, naming
from transcriber.formats.json_doc import to_dict
from transcriber.jobs.codec import options_to_dict
from transcriber.options import parse_time, request_options
from transcriber.pipeline import Pipeline
from transcriber.storage.s3 import error_code, is_missing, s3_client

log = logging.getLogger(__name__)


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
    # S3 notifications encode keys
    key = unquote_plus(_object_key(s3["object"]["key"], "s3.object.key"))
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


def _is_sqs_batch(event: Any) -> bool:
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


class Worker:
    """Transcribes the objects of events; one per process, so the model stays loaded."""

    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self.settings = settings or Settings()
        self.pipeline = Pipeline(self.settings)
        self.s3 = client or s3_client(self.settings.s3_endpoint_url)

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        if _is_sqs_batch(event):
            return self._handle_sqs(event["Records"])
        records = event.get("Records") if isinstance(event, dict) else None
        if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
            return self._handle_records(records)
        results = [self.run(item) for item in jobs_from_event(event)]
        if "s3_key" in event:
            return results[0]
        return {"results": results}

    def _handle_records(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """A notification's records, each of them even when one fails; then, if any
        failed, an ExceptionGroup of the failures, so that the platform retries the event
        (and the retry reuses the results finished this time)."""
        results: list[dict[str, Any]] = []
        failures: list[tuple[str, Exception]] = []
        for i, record in enumerate(records):
            try:
                items = jobs_from_record(record, i)
            except InputError as e:
                failures.append((f"Records[{i}]", e))
                continue
            done, failed = self._run_each(items)
            results += done
            failures += failed
        if failures:
            names = "; ".join(f"{where}: {type(e).__name__}: {e}"[:300] for where, e in failures)
            raise ExceptionGroup(
                f"{len(failures)} of the event's records or objects failed, after the others"
                f" were done; a retry reuses their results: {names}",
                [e for _, e in failures],
            )
        return {"results": results}

    def _run_each(
        self, items: list[Job | Skip]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, Exception]]]:
        """Each item run, whether or not one before it failed: the replies, and the
        failures (S3 unreachable, a file_id that cannot name a result) by object."""
        done: list[dict[str, Any]] = []
        failed: list[tuple[str, Exception]] = []
        for item in items:
            try:
                done.append(self.run(item))
            except Exception as e:
                where = f"s3://{item.bucket}/{item.key}"
                log.exception("%s failed; it will be retried", where)
                failed.append((where, e))
        return done, failed

    def _handle_sqs(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """An SQS batch, one message at a time: a message that fails (S3 unreachable, a
        malformed body) is named in `batchItemFailures`, so that with the event source's
        ReportBatchItemFailures only it is retried, and then sent to the dead-letter queue."""
        results: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        for record in records:
            try:
                items = jobs_from_event({"Records": [record]})
            except InputError:
                log.exception("SQS message %s is malformed", record["messageId"])
                failures.append({"itemIdentifier": record["messageId"]})
                continue
            done, failed = self._run_each(items)  # every object, even after one fails
            results += done
            if failed:
                log.warning("SQS message %s failed; it will be retried", record["messageId"])
                failures.append({"itemIdentifier": record["messageId"]})
        return {"results": results, "batchItemFailures": failures}

    def file_id(self, job: Job) -> str:
        if job.file_id is not None:
            return job.file_id
        return default_file_id(job.key, self.settings.s3_result_prefix)

    def run(self, job: Job | Skip) -> dict[str, Any]:
        """Transcribe one object and write its result; the reply names the result."""
        prefix = self.settings.s3_result_prefix
        if isinstance(job, Job) and job.key.startswith(prefix):
            job = Skip(f"it is under the result prefix {prefix}", job.bucket, job.key)
        if isinstance(job, Skip):
            log.info("skipping s3://%s/%s: %s", job.bucket, job.key, job.reason)
            return job.reply()
        file_id = self.file_id(job)
        key = result_key(prefix, file_id)
        summary = {"file_id": file_id, "user_id": job.user_id, "result_key": key}
        source: dict[str, Any] = {"bucket": job.bucket, "key": job.key}
        head = {"file_id": file_id, "user_id": job.user_id, "source": source}
        started = time.perf_counter()
        try:
            options = self._options(job)
            head["options"] = json.loads(json.dumps(options_to_dict(options)))
            stat = self._stat(job)
            source["etag"] = str(stat.get("ETag", "")).strip('"')
            if stat.get("VersionId"):
                source["version_id"] = stat["VersionId"]
            if self._finished(job.bucket, key, head):
                log.info("s3://%s/%s: %s is already done; reused", job.bucket, job.key, key)
                return summary | {"status": "completed", "reused": True}
            document = head | {"status": "completed"} | self._transcribe(job, options, stat)
        except TranscriberError as e:
            if not isinstance(e, InputError):
                raise
            log.warning("s3://%s/%s failed: %s", job.bucket, job.key, e.message)
            document = head | {"status": "failed", "error": e.message}
        document.setdefault("metadata", {})["processing_time"] = round(
            time.perf_counter() - started, 3
        )
        body = json.dumps(document, ensure_ascii=False, indent=2).encode()
        self.s3.put_object(Bucket=job.bucket, Key=key, Body=body,
                           ContentType="application/json; charset=utf-8")  # fmt: skip
        status = document["status"]
        return (
            summary
            | {"status": status}
            | ({"error": document["error"]} if "error" in document else {})
        )

    def _finished(self, bucket: str, key: str, head: dict[str, Any]) -> bool:
        """Whether `key` holds a completed result of this very object (its ETag and
        version) with these options, file_id and user_id: a message delivered again, or
        an event retried after some of its objects failed, need not transcribe again."""
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if is_missing(e):
                return False
            if error_code(e) in ("AccessDenied", "403"):  # a role that may not read results
                log.warning("cannot read s3://%s/%s to reuse it: %s", bucket, key, e)
                return False
            raise
        try:
            done = json.loads(body)
        except ValueError:
            return False
        return (
            isinstance(done, dict)
            and done.get("status") == "completed"
            and all(done.get(field) == value for field, value in head.items())
        )

    def _transcribe(
        self, job: Job, options: TranscriptionOptions, stat: dict[str, Any]
    ) -> dict[str, Any]:
        suffix = PurePosixPath(job.key).suffix[:16]
        with tempfile.TemporaryDirectory(prefix="transcriber-s3-") as tmp:
            self._check_size(job, int(stat["ContentLength"]), tmp)
            local = Path(tmp) / f"media{suffix}"
            self._download(job, local, stat.get("VersionId"))
            with naming(local, f"s3://{job.bucket}/{job.key}"):
                transcript = self.pipeline.run(
                    local, options, max_duration_s=self.settings.max_duration_s
                )
        return to_dict(transcript)

    def _options(self, job: Job) -> TranscriptionOptions:
        diarize = self.settings.serverless_diarize if job.diarize is None else job.diarize
        return request_options(
            self.settings,
            language=job.language,
            diarize=diarize,
            speakers=job.speakers,
            task=job.task,
            start=job.start,
            end=job.end,
            model_paths=False,
        )

    def _stat(self, job: Job) -> dict[str, Any]:
        """The object's HEAD: its size, ETag and version, before a byte is downloaded."""
        from botocore.exceptions import ClientError

        try:
            stat: dict[str, Any] = self.s3.head_object(Bucket=job.bucket, Key=job.key)
        except ClientError as e:
            if is_missing(e):
                raise InputError(f"s3://{job.bucket}/{job.key}: no such object") from e
            raise
        return stat

    def _check_size(self, job: Job, size: int, folder: str) -> None:
        """Refuse an object over TRANSCRIBER_MAX_UPLOAD_MB, or larger than the free space
        it would be downloaded to, as the input's fault: either would fail every retry
        (a full /tmp as an OSError, after the download)."""
        limit = self.settings.max_upload_mb
        if size > limit * 1e6:
            raise UploadTooLargeError(
                f"s3://{job.bucket}/{job.key}: {size / 1e6:,.1f} MB is over the limit of "
                f"{limit:g} MB (TRANSCRIBER_MAX_UPLOAD_MB)"
            )
        free = shutil.disk_usage(folder).free
        if size > free:
            raise UploadTooLargeError(
                f"s3://{job.bucket}/{job.key}: {size / 1e6:,.1f} MB does not fit in the "
                f"{free / 1e6:,.1f} MB free for temporary files (on Lambda: raise the "
                "function's ephemeral storage)"
            )

    def _download(self, job: Job, local: Path, version: str | None) -> None:
        from botocore.exceptions import ClientError

        try:  # the version HEAD saw, where the bucket keeps versions
            extra = {"VersionId": version} if version else None
            self.s3.download_file(job.bucket, job.key, str(local), ExtraArgs=extra)
        except ClientError as e:
            if is_missing(e):
                raise InputError(f"s3://{job.bucket}/{job.key}: no such object") from e
            raise


_worker: Worker | None = None


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The function a Lambda (or any S3/SQS trigger) calls; the model loads once per process."""
    global _worker
    if _worker is None:
        _worker = Worker()
    return _worker.handle(event)
