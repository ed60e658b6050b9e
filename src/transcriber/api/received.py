"""An upload as the whisper-asr-webservice endpoints read it: hashed, and, for raw PCM
(`encode=false`), given a WAV header (media/raw_pcm.py).

The upload is already on disk, staged by UploadRoute (api/uploads.py), which held it
to the upload limit as it arrived. A media file is read where it lies; raw PCM is
written once more, behind its header, as a new file in the same staging folder, which
the caller stores (`submit_staged`) or deletes (`Received.discard`). `/asr` looks the
hash up before anything is queued (api/reuse.py); `/detect-language` reads the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from transcriber.api.uploads import staged_path
from transcriber.media.raw_pcm import RawPcmWriter
from transcriber.storage.base import CHUNK


@dataclass(frozen=True, slots=True)
class Received:
    path: Path  # a staged file the decoder reads: the upload, or its raw PCM as WAV
    name: str  # the client's name for it
    size: int  # bytes uploaded
    sha256: str  # of the bytes as uploaded ("" when not asked for)
    raw: bool

    def discard(self) -> None:
        """Delete the WAV file made of raw PCM, if it was not stored (the upload itself
        is UploadRoute's to delete)."""
        if self.raw:
            self.path.unlink(missing_ok=True)


def receive(
    upload: Path,
    name: str,
    raw: bool,
    keep_bytes: int | None = None,
    hashed: bool = True,
) -> Received:
    """Read the staged `upload` once: hash it (`hashed`) and, when `raw`, check its bytes
    as raw PCM and write them as WAV beside it (`keep_bytes` of audio at most). Raises
    RawPcmWriter's errors for raw PCM that is not; `name` is what their messages call
    the upload."""
    digest = hashlib.sha256()
    size = 0
    if not raw and not hashed:
        return Received(upload, name, upload.stat().st_size, "", raw)
    wav = upload.parent / f"{uuid.uuid4().hex}.wav"
    try:
        with upload.open("rb") as src, wav.open("wb") if raw else nullcontext() as out:
            pcm = RawPcmWriter(out, keep_bytes) if out is not None else None
            while block := src.read(CHUNK):
                size += len(block)
                if hashed:
                    digest.update(block)
                if pcm is not None:
                    pcm.write(block)
            if pcm is not None:
                pcm.finish(name)
    except BaseException:
        wav.unlink(missing_ok=True)
        raise
    sha256 = digest.hexdigest() if hashed else ""
    return Received(wav if raw else upload, name, size, sha256, raw)


async def receive_upload(
    upload: UploadFile,
    raw: bool,
    name: str | None = None,
    keep_bytes: int | None = None,
    hashed: bool = True,
) -> Received:
    """`receive` on a staged multipart upload, in a thread: hashing and copying a large
    file would hold the event loop. `name` (default: the upload's) is what errors call
    it."""
    name = name or upload.filename or "upload"
    return await asyncio.to_thread(receive, staged_path(upload), name, raw, keep_bytes, hashed)
