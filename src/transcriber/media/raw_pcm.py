"""Headerless PCM, as whisper-asr-webservice reads it with `encode=false`: signed 16-bit
little-endian samples, one channel, 16 kHz, what `ffmpeg -f s16le -ac 1 -ar 16000` writes
and Bazarr uploads.

Such bytes have no header, so there is nothing to probe, and ffmpeg's guess at them is
wrong (an image, often). They are given a header instead: `RawPcmWriter` writes them
behind a WAV header that states exactly this format and their length, and the rest of
the service reads the result as it reads any WAV file, with the same limits.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from transcriber.errors import EmptyFileError, NotMediaError, UploadTooLargeError

RATE = 16_000
BYTES_PER_SECOND = RATE * 2
HEADER_BYTES = 44
# The RIFF and data sizes are 32-bit fields.
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_BYTES - 8)
ENCODE_HINT = (
    "with encode=false the body must be headerless 16-bit little-endian PCM, mono, 16 kHz"
    " (ffmpeg -f s16le -ac 1 -ar 16000); send a media file with encode=true instead"
)
_HEAD = 16  # bytes kept from the start of the data to recognise a container


def wav_header(data_bytes: int) -> bytes:
    """The 44-byte header of a WAV file holding `data_bytes` of RATE Hz mono s16le."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,  # size of the fmt chunk
        1,  # PCM
        1,  # channels
        RATE,
        BYTES_PER_SECOND,
        2,  # bytes per frame
        16,  # bits per sample
        b"data",
        data_bytes,
    )


def container_of(head: bytes) -> str | None:
    """What a body that starts with `head` is, when its first bytes plainly say so.

    Only signatures of four bytes or more (or three and a version byte) are trusted:
    raw PCM is arbitrary bytes, and a shorter match (an mp3 frame sync, say) is an
    ordinary pair of samples.
    """
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "a WAV file"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF file"
    if head[:3] == b"ID3" and head[3:4] in (b"\x02", b"\x03", b"\x04"):
        return "an MP3 file (it starts with an ID3 tag)"
    if head[4:8] == b"ftyp":
        return "an MP4/M4A/MOV file"
    signatures = {
        b"fLaC": "a FLAC file",
        b"OggS": "an Ogg file (Opus or Vorbis)",
        b"\x1a\x45\xdf\xa3": "a Matroska/WebM file",
        b"caff": "a CAF file",
        b"#!AM": "an AMR file",
        b"\x30\x26\xb2\x75": "a WMA/ASF file",
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a zip archive",
    }
    kind = signatures.get(head[:4])
    if kind is None and head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        kind = "a web page (HTML)"
    return kind


class RawPcmWriter:
    """Raw PCM blocks in, a WAV file out: `write` each block as it arrives, then `finish`.

    With `keep_bytes`, only the first that many bytes of audio are written (language
    detection reads only the start); the rest are counted and checked all the same.
    """

    def __init__(self, out: BinaryIO, keep_bytes: int | None = None) -> None:
        self.out = out
        self.whole = keep_bytes is None
        keep = MAX_DATA_BYTES if keep_bytes is None else min(keep_bytes, MAX_DATA_BYTES)
        self.keep = keep - keep % 2  # whole samples only
        self.received = 0
        self.written = 0
        self.head = b""
        out.write(b"\0" * HEADER_BYTES)  # the real header once the length is known

    def write(self, block: bytes) -> None:
        if len(self.head) < _HEAD:
            self.head += block[: _HEAD - len(self.head)]
        self.received += len(block)
        room = self.keep - self.written
        if room > 0:
            part = block[:room]
            self.out.write(part)
            self.written += len(part)

    def finish(self, name: str) -> float:
        """Check what was received and write the header; the seconds of audio written.

        Raises EmptyFileError for no bytes, NotMediaError for an odd count (not whole
        samples) or a body that is plainly a media file with a header of its own, and
        UploadTooLargeError for more audio than one WAV file can hold.
        """
        if self.received == 0:
            raise EmptyFileError(f"{name}: the upload is empty (0 bytes); {ENCODE_HINT}")
        kind = container_of(self.head)
        if kind is not None:
            raise NotMediaError(f"{name}: this is {kind}, not raw PCM; {ENCODE_HINT}")
        if self.received % 2:
            raise NotMediaError(
                f"{name}: {self.received} bytes is not a whole number of 16-bit samples;"
                f" {ENCODE_HINT}"
            )
        if self.whole and self.received > self.keep:
            raise UploadTooLargeError(
                f"{name}: {self.received / BYTES_PER_SECOND / 3600:.1f} hours of raw PCM is"
                " more than one upload can hold; send it in parts"
            )
        self.out.seek(0)
        self.out.write(wav_header(self.written))
        return self.written / BYTES_PER_SECOND
