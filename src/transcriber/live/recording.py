"""The audio of a live session, kept as it arrived, in a WAV file on local disk.

Samples are written at the client's own rate as 16-bit PCM (μ-law and A-law are
expanded, which loses nothing), so the saved task plays in any browser and can be
transcribed again offline exactly as it was heard. The header is rewritten on every
`close`, so even a session whose client vanished leaves a complete file.
"""

from __future__ import annotations

import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np


class Recording:
    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._dir = Path(tempfile.mkdtemp(prefix="transcriber-live-"))
        self.path = self._dir / "live.wav"
        # Open for the whole session, closed by `close`: not a `with` block.
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self.samples = 0

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def write(self, pcm16: np.ndarray) -> None:
        if self._wav is not None and len(pcm16):
            self._wav.writeframes(pcm16.astype("<i2", copy=False).tobytes())
            self.samples += len(pcm16)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self._dir, ignore_errors=True)
