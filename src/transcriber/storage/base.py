"""The Store role: named blobs for uploads, checkpoints and results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol


class Store(Protocol):
    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], limit: int) -> int:
        """Write chunks under `key`; stop with UploadTooLarge past `limit` bytes."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the blob's content, for the decoder, for the `with` block."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...

    def check(self) -> None:
        """Raise if the store cannot be written."""
        ...
