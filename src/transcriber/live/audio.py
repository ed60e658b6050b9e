"""Raw audio as a live client sends it → 16-bit samples at its own rate, and 16 kHz float32.

A client sends headerless frames of any size: little-endian 16-bit PCM, or G.711 μ-law
or A-law bytes as telephony carries them. A sample split across two frames is carried
over. A frame that starts like a media file (WAV, Ogg, MP3, …) is refused: containers
are not decoded here, and reading one as samples would give noise.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import av
import numpy as np

from transcriber.errors import NotAudioError, OptionError
from transcriber.media.frames import SAMPLE_RATE

ENCODINGS = ("pcm_s16le", "mulaw", "alaw")
SAMPLE_RATES = (8000, 16000, 24000, 48000)
# The first bytes of files that are sometimes sent where raw samples belong.
SIGNATURES = {
    b"RIFF": "a WAV file",
    b"OggS": "an Ogg file",
    b"fLaC": "a FLAC file",
    b"ID3\x03\x00": "an MP3 file",
    b"ID3\x04\x00": "an MP3 file",
    b"\x1aE\xdf\xa3": "a WebM/Matroska file",
}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """How the client's bytes encode sound: `encoding` at `sample_rate` Hz, mono."""

    encoding: str = "pcm_s16le"
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise OptionError(
                f"encoding {self.encoding!r} is not supported; use one of {', '.join(ENCODINGS)}"
            )
        if self.sample_rate not in SAMPLE_RATES:
            rates = ", ".join(str(r) for r in SAMPLE_RATES)
            raise OptionError(
                f"sample_rate {self.sample_rate} is not supported; use one of {rates}"
            )

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm_s16le" else 1

    def describe(self) -> str:
        return f"{self.encoding} at {self.sample_rate} Hz"


@functools.cache
def _g711_table(law: str) -> np.ndarray:
    """The 256 16-bit values that G.711 μ-law or A-law bytes stand for."""
    codes = np.arange(256, dtype=np.int32)
    if law == "mulaw":
        u = ~codes & 0xFF
        exponent = (u >> 4) & 7
        magnitude = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
        values = np.where(u & 0x80, -magnitude, magnitude)
    else:
        a = codes ^ 0x55
        exponent = (a >> 4) & 7
        mantissa = a & 0x0F
        magnitude = np.where(
            exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
        )
        values = np.where(a & 0x80, magnitude, -magnitude)
    return values.astype(np.int16)


class AudioInput:
    """Turns the client's frames into samples; keeps a partial sample for the next frame."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self._carry = b""
        self._resampler: av.AudioResampler | None = None
        if fmt.sample_rate != SAMPLE_RATE:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self.samples_in = 0  # at the client's rate

    def pcm16(self, data: bytes) -> np.ndarray:
        """The frame's samples as 16-bit integers at the client's rate."""
        check_frame(data, self.format)
        if self.format.encoding != "pcm_s16le":
            out = _g711_table(self.format.encoding)[np.frombuffer(data, np.uint8)]
            self.samples_in += len(out)
            return out
        data = self._carry + data
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        out = np.frombuffer(data[:whole], "<i2").astype(np.int16)
        self.samples_in += len(out)
        return out

    def to_model_rate(self, pcm: np.ndarray) -> np.ndarray:
        """16 kHz float32 in ±1 from 16-bit samples at the client's rate (streamed: the
        resampler keeps a few samples back until more arrive or `flush`)."""
        if self._resampler is None:
            return pcm.astype(np.float32) / 32768.0
        if not len(pcm):
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.format.sample_rate
        return _joined(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """What the resampler still holds, at the end of the stream."""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return _joined(self._resampler.resample(None))


def _joined(frames: list[av.AudioFrame]) -> np.ndarray:
    parts = [f.to_ndarray().reshape(-1) for f in frames]
    if not parts:
        return np.zeros(0, np.float32)
    return np.clip(np.concatenate(parts).astype(np.float32, copy=False), -1.0, 1.0)


def check_frame(data: bytes, fmt: AudioFormat) -> None:
    """Refuse a frame that is plainly a file or text rather than raw samples."""
    what = next((w for head, w in SIGNATURES.items() if data.startswith(head)), None)
    if what is None and data[:1] == b"{" and data.rstrip()[-1:] == b"}":
        try:
            json.loads(data)
            what = "JSON text (send control messages as text frames)"
        except ValueError:
            pass  # samples that happen to start with a brace
    if what is not None:
        raise NotAudioError(
            f"a binary frame holds {what}, not raw audio; send headerless"
            f" {fmt.describe()} samples (decode the file first, or use POST /api/tasks)"
        )
