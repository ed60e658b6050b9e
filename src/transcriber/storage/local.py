"""LocalStore: blobs are files under one folder. Keys never come from clients."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from transcriber.errors import FileMissingError, UnavailableError
from transcriber.storage.base import CHUNK, check_key, check_range, clear_stale_staging, spool

STAGING = ".staging"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._staging: Path | None = None

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink inside the store
            raise ValueError(f"storage key escapes the store: {key!r}")
        return path

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write the file system refuses (full, read-only, the folder replaced) as the
        store out of reach: a 503 in the API, a retry in the worker."""
        try:
            yield
        except OSError as e:
            reason = e.strerror or type(e).__name__
            raise UnavailableError(f"storage folder {self.root} cannot be written: {reason}") from e

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileMissingError(f"{key}: not in the store")
        return path

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        limit: int,
        check: Callable[[Path], None] | None = None,
    ) -> int:
        path = self._path(key)
        tmp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")  # keeps the suffix
        try:
            with self._writing():
                path.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as f:
                    size = await spool(chunks, f, limit)
            if check is not None:
                await asyncio.to_thread(check, tmp)
            with self._writing():
                os.replace(tmp, path)
        finally:
            _discard(tmp)
        return size

    async def put_file(
        self, key: str, path: Path, check: Callable[[Path], None] | None = None
    ) -> int:
        try:
            dest = self._path(key)
            if check is not None:
                await asyncio.to_thread(check, path)
            size = path.stat().st_size
            with self._writing():
                await asyncio.to_thread(_move_file, path, dest)
            return size
        finally:
            path.unlink(missing_ok=True)

    def staging(self) -> Path:
        if self._staging is None:
            folder = self.root / STAGING
            folder.mkdir(exist_ok=True)
            clear_stale_staging(folder)  # left by a process that died mid-upload
            self._staging = folder
        return self._staging

    def copy(self, key: str, new_key: str) -> None:
        # Blobs are never written in place (put_bytes replaces the file), so two names
        # for one file stay independent: deleting either leaves the other whole.
        source, dest = self._file(key), self._path(new_key)
        tmp = dest.with_name(f".{uuid.uuid4().hex}-{dest.name}")
        try:
            with self._writing():
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, tmp)
                except OSError:  # a file system without hard links
                    shutil.copyfile(source, tmp)
                os.replace(tmp, dest)
        finally:
            _discard(tmp)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        try:
            with self._writing():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
                os.replace(tmp, path)
        finally:
            _discard(tmp)

    def get_bytes(self, key: str) -> bytes:
        return self._file(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._file(key).stat().st_size

    def read_range(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        check_range(start, stop)
        path = self._file(key)  # before the first block, so a missing key fails at the call
        return self._blocks(path, start, stop)

    @staticmethod
    def _blocks(path: Path, start: int, stop: int) -> Iterator[bytes]:
        with path.open("rb") as f:
            f.seek(start)
            left = stop - start
            while left > 0 and (block := f.read(min(CHUNK, left))):
                left -= len(block)
                yield block

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        yield self._file(key)

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def delete_older(self, prefix: str, max_age_s: float) -> int:
        root = self._path(prefix)
        if not root.is_dir():
            return 0
        cutoff, gone = time.time() - max_age_s, 0
        for path in root.rglob("*"):
            try:
                if (
                    path.is_file()
                    and not path.name.startswith(".")
                    and (path.stat().st_mtime < cutoff)
                ):
                    path.unlink()
                    gone += 1
            except FileNotFoundError:  # removed meanwhile by a request
                continue
        return gone

    def check(self) -> None:
        try:
            probe = self._path(f".ready-{uuid.uuid4().hex}")
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise UnavailableError(f"storage folder {self.root} cannot be written: {e}") from e


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; where even that fails (its folder is not
    a folder), the error being raised already says why."""
    with suppress(OSError):
        tmp.unlink(missing_ok=True)


def _move_file(path: Path, dest: Path) -> None:
    """Rename `path` to `dest`; across disks, copy beside `dest` and rename that."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dest.with_name(f".{uuid.uuid4().hex}-{dest.name}")
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        path.unlink()
