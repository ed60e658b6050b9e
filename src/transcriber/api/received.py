"""An upload copied to a local file in one pass: counted against the upload limit,
hashed, and, for raw PCM (`encode=false`), given a WAV header (media/raw_pcm.py).

The drop-in endpoints of whisper-asr-webservice work on such a copy: `/detect-language`
reads it directly, and `/asr` looks its hash up before anything is queued.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import UploadFile

from transcriber.errors import UploadTooLargeError
from transcriber.media.raw_pcm import RawPcmWriter
from transcriber.storage.base import CHUNK


@dataclass(frozen=True, slots=True)
class Received:
    path: Path  # a file the decoder reads: the upload, or its raw PCM as WAV
    name: str  # the client's name for it
    size: int  # bytes uploaded
    sha256: str  # of the bytes as uploaded
    raw: bool


def receive(
    src: BinaryIO,
    name: str,
    folder: Path,
    limit: int,
    raw: bool,
    keep_bytes: int | None = None,
    suffix: str = "",
) -> Received:
    """Copy `src` into `folder`, as `media` with `suffix` (the upload's). `raw`: the bytes
    are raw PCM, checked and written as WAV (`keep_bytes` of audio at most). Raises
    UploadTooLargeError past `limit` bytes, and RawPcmWriter's errors for raw PCM that
    is not; `name` is what their messages call the upload."""
    digest = hashlib.sha256()
    path = folder / ("media.wav" if raw else f"media{suffix[:16]}")
    size = 0
    with path.open("wb") as out:
        pcm = RawPcmWriter(out, keep_bytes) if raw else None
        while block := src.read(CHUNK):
            size += len(block)
            if size > limit:
                raise UploadTooLargeError(
                    f"upload is larger than the limit of {limit / 1e6:.0f} MB"
                )
            digest.update(block)
            if pcm is not None:
                pcm.write(block)
            else:
                out.write(block)
        if pcm is not None:
            pcm.finish(name)
    return Received(path, name, size, digest.hexdigest(), raw)


async def receive_upload(
    upload: UploadFile,
    folder: Path,
    limit: int,
    raw: bool,
    name: str | None = None,
    keep_bytes: int | None = None,
) -> Received:
    """`receive` on a multipart upload, in a thread: hashing and copying a large file
    would hold the event loop. `name` (default: the upload's) is what errors call it."""
    name = name or upload.filename or "upload"
    suffix = Path(upload.filename or "").suffix
    await upload.seek(0)
    return await asyncio.to_thread(
        receive, upload.file, name, folder, limit, raw, keep_bytes, suffix
    )


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes in blocks, read in a thread (for Store.put_stream)."""
    with path.open("rb") as f:
        while block := await asyncio.to_thread(f.read, CHUNK):
            yield block
