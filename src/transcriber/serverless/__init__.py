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

import itertools
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from transcriber.config import Settings
from transcriber.domain import TranscriptionOptions
from transcriber.errors import (
    InputError,
    TranscriberError,
    UnavailableError,
    UploadTooLargeError,
    naming,
)
from transcriber.formats.json_doc import to_dict
from transcriber.jobs.codec import options_to_dict
from transcriber.options import request_options
from transcriber.pipeline import Pipeline
from transcriber.serverless.events import (
    Job,
    Skip,
    default_file_id,
    is_sqs_batch,
    jobs_from_event,
    jobs_from_record,
    result_key,
)
from transcriber.storage.s3 import error_code, is_missing, s3_client

# Reads of an object that keeps being replaced while it is read, before the event is
# left to the platform to retry.
REPLACED_READS = 3
DOWNLOAD_BLOCK = 1 << 20  # bytes written at a time

log = logging.getLogger(__name__)

__all__ = ["Job", "Skip", "Worker", "default_file_id", "jobs_from_event", "lambda_handler",
           "result_key"]  # fmt: skip


class Worker:
    """Transcribes the objects of events; one per process, so the model stays loaded."""

    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self.settings = settings or Settings()
        self.pipeline = Pipeline(self.settings)
        self.s3 = client or s3_client(self.settings.s3_endpoint_url)

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        if is_sqs_batch(event):
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
            for reads in itertools.count(1):
                stat = self._stat(job)
                source.pop("version_id", None)
                source["etag"] = str(stat.get("ETag", "")).strip('"')
                if stat.get("VersionId"):
                    source["version_id"] = stat["VersionId"]
                if self._finished(job.bucket, key, head):
                    log.info("s3://%s/%s: %s is already done; reused", job.bucket, job.key, key)
                    return summary | {"status": "completed", "reused": True}
                try:
                    document = head | {"status": "completed"} | self._transcribe(job, options, stat)
                    break
                except _Replaced:
                    if reads >= REPLACED_READS:
                        raise UnavailableError(
                            f"s3://{job.bucket}/{job.key} was replaced each of the"
                            f" {reads} times it was read; the event will be retried"
                        ) from None
                    log.info("s3://%s/%s was replaced while being read; reading it again",
                             job.bucket, job.key)  # fmt: skip
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
            self._download(job, local, stat.get("VersionId"), stat.get("ETag"))
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

    def _download(self, job: Job, local: Path, version: str | None, etag: str | None) -> None:
        """Download the very object HEAD saw: its version where the bucket keeps
        versions; else the object with its ETag (a plain GET with If-Match, as the
        transfer manager takes no If-Match), so that an upload replacing it meanwhile is
        refused (_Replaced), not read instead of it or mixed into it."""
        from botocore.exceptions import ClientError

        try:
            if version or not etag:
                extra = {"VersionId": version} if version else None
                self.s3.download_file(job.bucket, job.key, str(local), ExtraArgs=extra)
                return
            body = self.s3.get_object(Bucket=job.bucket, Key=job.key, IfMatch=etag)["Body"]
            with local.open("wb") as out:
                for block in body.iter_chunks(DOWNLOAD_BLOCK):
                    out.write(block)
        except ClientError as e:
            if is_missing(e):
                raise InputError(f"s3://{job.bucket}/{job.key}: no such object") from e
            if error_code(e) in ("PreconditionFailed", "412"):
                raise _Replaced from e
            raise


class _Replaced(Exception):
    """The object changed between its HEAD and its download (an unversioned bucket)."""


_worker: Worker | None = None


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The function a Lambda (or any S3/SQS trigger) calls; the model loads once per process."""
    global _worker
    if _worker is None:
        _worker = Worker()
    return _worker.handle(event)
