"""The decoded 16 kHz stream, kept on disk for a second pass over it.

Diarization reads the whole file again after the transcription. Decoding it a second
time costs as much as the first (about 0.5 s for 6.6 minutes of WAV, far more for a
compressed video), so the transcription writes what it decoded here as it goes, and
diarization reads it back. The samples go to an anonymous temporary file as 16-bit
PCM (115 MB per hour of audio), never to memory, so memory stays flat in the file's
length; the file disappears when the spool is closed, or with the process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np

from transcriber.media.frames import SAMPLE_RATE

READ_S = 30.0  # seconds of audio per chunk read back


class PcmSpool:
    def __init__(self, folder: str | None = None) -> None:
        # Open for the spool's life, closed by `close` (a context manager cannot span it).
        self._file = tempfile.TemporaryFile(prefix="transcriber-pcm-", dir=folder)  # noqa: SIM115
        self.samples = 0

    def write(self, chunk: np.ndarray) -> None:
        """Keep one float32 chunk of the stream, in order."""
        pcm = np.clip(np.rint(chunk * 32768.0), -32768, 32767).astype("<i2")
        self._file.seek(0, 2)  # at the end, whatever a reader left
        self._file.write(pcm.tobytes())
        self.samples += len(pcm)

    def chunks(self, seconds: float = READ_S) -> Iterator[np.ndarray]:
        """The stream written so far, from its start, as float32 chunks."""
        self._file.flush()
        self._file.seek(0)
        size = int(seconds * SAMPLE_RATE) * 2
        while data := self._file.read(size):
            yield np.frombuffer(data, "<i2").astype(np.float32) / np.float32(32768.0)

    def close(self) -> None:
        self._file.close()
