"""The Store role: named blobs for uploads, checkpoints and results.

Keys are `/`-separated relative names made by the service (`<task id>/input`),
never by clients. A missing key raises `FileMissingError` from every method but
`exists` and `delete_prefix`; a malformed one raises `ValueError`, as it is a bug.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Protocol

from transcriber.errors import UploadTooLargeError

CHUNK = 1 << 20
"""Bytes per block when blobs are streamed."""


class Store(Protocol):
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        limit: int,
        check: Callable[[Path], None] | None = None,
    ) -> int:
        """Write chunks under `key`; past `limit` bytes raise UploadTooLarge and store nothing.

        `check`, if given, runs (in a thread) on a complete local copy whose name ends
        with the key's suffix, before the blob is stored; if it raises, nothing is stored.
        """
        ...

    async def put_file(
        self, key: str, path: Path, check: Callable[[Path], None] | None = None
    ) -> int:
        """Store the local file `path` (in `staging()`) under `key`, consuming it: it is
        moved, or sent and deleted, never copied on local disk. `check` runs first (in a
        thread); if it raises, nothing is stored. The size in bytes."""
        ...

    def staging(self) -> Path:
        """A local folder for files on their way into the store (`put_file`), on the same
        disk as the store's blobs where it has them, so that storing one is a rename."""
        ...

    def copy(self, key: str, new_key: str) -> None:
        """A second blob `new_key` with the content of `key`, made within the store (a
        hard link where the disk allows, else a copy on it; a server-side copy on S3),
        never through this process's memory. FileMissingError if `key` is not there."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def read_range(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        """Bytes `[start, stop)` of the blob in blocks of at most CHUNK, clipped to its end."""
        ...

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the blob's content, for the decoder, for the `with` block.

        Its name ends with the key's suffix. Do not write to it.
        """
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Delete the blob `prefix` and every blob under `prefix/`."""
        ...

    def delete_older(self, prefix: str, max_age_s: float) -> int:
        """Delete the blobs under `prefix/` last written more than `max_age_s` ago; how many."""
        ...

    def check(self) -> None:
        """Raise UnavailableError, naming the place, if the store cannot be written."""
        ...


def check_key(key: str) -> str:
    """`key`, if it is a relative name with no empty, `.` or `..` segments."""
    bad_segment = any(p in ("", ".", "..") for p in key.split("/"))
    if bad_segment or "\\" in key or "\0" in key:  # a leading / makes an empty segment
        raise ValueError(f"invalid storage key {key!r}")
    return key


def check_range(start: int, stop: int) -> None:
    if not 0 <= start <= stop:
        raise ValueError(f"invalid byte range [{start}, {stop})")


async def spool(chunks: AsyncIterator[bytes], out: IO[bytes], limit: int) -> int:
    """Copy `chunks` into `out`; the byte count, or UploadTooLargeError past `limit`.
    Written from a thread in blocks of CHUNK or more: a disk that stalls (dirty pages
    throttled, a network volume) must not hold the event loop."""
    size = 0
    pending = bytearray()
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(f"upload is larger than the limit of {limit / 1e6:g} MB")
        pending += chunk
        if len(pending) >= CHUNK:
            block, pending = bytes(pending), bytearray()
            await asyncio.to_thread(out.write, block)
    if pending:
        await asyncio.to_thread(out.write, bytes(pending))
    return size


STAGED_TTL_S = 24 * 3600.0  # a staged upload older than this was left by a dead process


def clear_stale_staging(folder: Path, older_than_s: float = STAGED_TTL_S) -> int:
    """Remove the files in `folder` untouched for `older_than_s` (uploads staged by a
    process that died mid-request); how many."""
    cutoff, gone = time.time() - older_than_s, 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except FileNotFoundError:  # taken meanwhile by its request
            continue
    return gone
