"""S3Store: blobs are objects in one bucket, under an optional prefix, for services
whose API nodes and workers share S3 (AWS, SeaweedFS, MinIO).

`s3://BUCKET/PREFIX?endpoint_url=http://127.0.0.1:8333&region=us-east-1`; the
credentials come from boto3's default chain (the usual AWS variables and files).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlparse

from transcriber.errors import FileMissingError, MissingExtraError, OptionError, UnavailableError
from transcriber.storage.base import CHUNK, check_key, check_range, clear_stale_staging, spool

_PARAMS = ("endpoint_url", "region")


# An endpoint that takes connections but does not answer (a hung server, a paused
# container) is given up on after this many seconds a read, so that a worker notices an
# outage in about a minute (three tries), not four; the readiness check waits less.
READ_TIMEOUT_S = 20
CHECK_TIMEOUT_S = 3


# Local copies of stored inputs are made in temporary folders named for the process.
DOWNLOADS = "transcriber-s3-"


def sweep_downloads(root: Path | None = None) -> int:
    """Remove the download folders of processes that are gone (a worker killed while it
    held a copy of its task's input leaves one behind); how many. A folder whose process
    still runs, or may (a number taken again), is kept."""
    root = root or Path(tempfile.gettempdir())
    gone = 0
    for folder in root.glob(f"{DOWNLOADS}*-*"):
        pid = folder.name.removeprefix(DOWNLOADS).split("-", 1)[0]
        if not pid.isdigit() or not folder.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        gone += 1
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True


def s3_client(
    endpoint_url: str | None = None, region: str | None = None, quick: bool = False
) -> Any:
    """A boto3 S3 client; AWS itself when `endpoint_url` is empty. `quick`: one try
    with short timeouts, for a health check that must answer in time."""
    try:
        import boto3
    except ImportError as e:
        raise MissingExtraError(
            "S3 needs boto3, an optional extra: pip install 'video-transcriber[s3]'"
        ) from e
    from botocore.config import Config

    # a session per client: boto3's default session is not safe to share between threads
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        config=Config(connect_timeout=CHECK_TIMEOUT_S, read_timeout=CHECK_TIMEOUT_S,
                      retries={"mode": "standard", "max_attempts": 1})
        if quick
        else Config(connect_timeout=5, read_timeout=READ_TIMEOUT_S,
                    retries={"mode": "standard", "max_attempts": 3}),
    )  # fmt: skip


def error_code(e: Exception) -> str:
    """The S3 error code of a botocore ClientError (`NoSuchKey`, `404`, …), or ''."""
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def is_missing(e: Exception) -> bool:
    """Whether `e` says that the object does not exist."""
    return error_code(e) in ("404", "NoSuchKey", "NotFound")


class S3Store:
    def __init__(
        self, bucket: str, prefix: str = "", client: Any = None, checker: Any = None
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{check_key(prefix)}/" if prefix else ""
        self.client = client if client is not None else s3_client()
        # check()'s client: one quick try (s3_client(quick=True)); a store handed only its
        # client (with credentials of its own) checks with that one.
        self.checker = checker if checker is not None else (
            self.client if client is not None else s3_client(quick=True)
        )  # fmt: skip
        self._staging: Path | None = None
        sweep_downloads()

    @classmethod
    def from_url(cls, url: str, default_endpoint: str = "") -> S3Store:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        unknown = sorted(set(query) - set(_PARAMS))
        if not parsed.netloc or unknown:
            raise OptionError(
                f"invalid storage URL {url!r}; use s3://BUCKET/PREFIX"
                "?endpoint_url=URL&region=REGION (both optional)"
            )
        endpoint = query.get("endpoint_url", [default_endpoint])[-1]
        region = query.get("region", [""])[-1]
        prefix = parsed.path.strip("/")
        try:
            return cls(parsed.netloc, prefix, s3_client(endpoint, region),
                       s3_client(endpoint, region, quick=True))  # fmt: skip
        except ValueError:
            raise OptionError(f"invalid prefix {prefix!r} in storage URL {url!r}") from None

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.client.meta.endpoint_url}"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """S3's errors as the error tree's: a missing object, or a store out of reach."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            if is_missing(e):
                raise FileMissingError(f"{key}: not in the store") from e
            raise UnavailableError(f"storage {self.where}: {e}") from e
        except BotoCoreError as e:
            raise UnavailableError(f"storage {self.where}: {e}") from e
        except Boto3Error as e:  # its transfers wrap S3's errors: S3UploadFailedError, …
            if isinstance(e.__context__, ClientError) and is_missing(e.__context__):
                raise FileMissingError(f"{key}: not in the store") from e
            raise UnavailableError(f"storage {self.where}: {e}") from e

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        limit: int,
        check: Callable[[Path], None] | None = None,
    ) -> int:
        name = self._key(key)
        # spooled to disk, so that an upload is never held in memory, checked there (no
        # second download to probe it), then sent in parts
        suffix = PurePosixPath(key).suffix
        with tempfile.NamedTemporaryFile(prefix="transcriber-upload-", suffix=suffix) as f:
            size = await spool(chunks, f.file, limit)
            f.flush()
            if check is not None:
                await asyncio.to_thread(check, Path(f.name))
            f.seek(0)
            with self._errors(key):
                await asyncio.to_thread(self.client.upload_fileobj, f, self.bucket, name)
        return size

    async def put_file(
        self, key: str, path: Path, check: Callable[[Path], None] | None = None
    ) -> int:
        try:
            name = self._key(key)
            if check is not None:
                await asyncio.to_thread(check, path)
            size = path.stat().st_size
            with self._errors(key):
                await asyncio.to_thread(self.client.upload_file, str(path), self.bucket, name)
            return size
        finally:
            path.unlink(missing_ok=True)

    def staging(self) -> Path:
        if self._staging is None:
            folder = Path(tempfile.gettempdir()) / "transcriber-staging"
            folder.mkdir(exist_ok=True)
            clear_stale_staging(folder)  # left by a process that died mid-upload
            self._staging = folder
        return self._staging

    def copy(self, key: str, new_key: str) -> None:
        source = {"Bucket": self.bucket, "Key": self._key(key)}
        with self._errors(key):
            self.client.copy(source, self.bucket, self._key(new_key))  # in parts if large

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with body:
                data: bytes = body.read()
                return data

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileMissingError:
            return False
        return True

    def size(self, key: str) -> int:
        with self._errors(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return int(head["ContentLength"])

    def read_range(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        check_range(start, stop)
        name = self._key(key)
        with self._errors(key):
            try:
                # S3 cannot send an empty range, so even [n, n) is asked as one byte
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={start}-{max(start, stop - 1)}"
                )
            except Exception as e:
                if error_code(e) != "InvalidRange":  # a start at or past the end
                    raise
                return iter(())
        return self._blocks(answer["Body"], stop - start)

    @staticmethod
    def _blocks(body: Any, length: int) -> Iterator[bytes]:
        with body:
            for block in body.iter_chunks(CHUNK):
                block = block[:length]
                length -= len(block)
                if block:
                    yield block

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        name = self._key(key)
        with tempfile.TemporaryDirectory(prefix=f"{DOWNLOADS}{os.getpid()}-") as tmp:
            path = Path(tmp) / PurePosixPath(name).name
            with self._errors(key):
                self.client.download_file(self.bucket, name, str(path))
            yield path

    def delete_prefix(self, prefix: str) -> None:
        name = self._key(prefix)
        with self._errors(prefix):
            self.client.delete_object(Bucket=self.bucket, Key=name)
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{name}/"):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
                if not keys:
                    continue
                answer = self.client.delete_objects(  # a page holds at most 1000, the limit
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise UnavailableError(
                        f"storage {self.where}: cannot delete {first.get('Key')}: "
                        f"{first.get('Code')} {first.get('Message')}"
                    )

    def delete_older(self, prefix: str, max_age_s: float) -> int:
        name = self._key(prefix)
        cutoff = datetime.now(UTC) - timedelta(seconds=max_age_s)
        gone = 0
        with self._errors(prefix):
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{name}/"):
                old = [{"Key": o["Key"]} for o in page.get("Contents", ())
                       if o["LastModified"] < cutoff]  # fmt: skip
                if old:
                    self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": old, "Quiet": True}
                    )
                    gone += len(old)
        return gone

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.checker
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if error_code(e) in ("404", "NoSuchBucket", "NotFound"):
                raise UnavailableError(f"storage {self.where}: no such bucket") from e
            raise UnavailableError(f"storage {self.where} cannot be read: {e}") from e
        except BotoCoreError as e:
            raise UnavailableError(f"storage {self.where} cannot be used: {e}") from e
        probe = f".ready-{uuid.uuid4().hex}"
        try:
            client.put_object(Bucket=self.bucket, Key=self._key(probe), Body=b"ok")
            client.delete_object(Bucket=self.bucket, Key=self._key(probe))
        except (ClientError, BotoCoreError) as e:
            raise UnavailableError(f"storage {self.where} cannot be written: {e}") from e
