"""Decoded audio frames → the 16 kHz mono float32 chunks the rest of the code reads.

`Mixer` converts frames of any rate, format and layout; `Cancellation` tells when a
stream's channels cancel each other in the mono mix; `Clock` turns a jump in the
timestamps into silence; `Chunks` gathers samples into fixed-size chunks and makes
them safe for the models (finite, centred, within ±1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import numpy as np

SAMPLE_RATE = 16_000

# Containers that stamp each packet with its time, so that a jump forward in the
# timestamps is a real gap in the recording, filled with silence when longer than
# _GAP_S. (Raw streams such as mp3 and ADTS only count samples; avi audio times are
# unreliable.)
_TIMED = {"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "ogg", "mpegts", "mpeg", "flv", "asf", "nut"}
_GAP_S = 0.5
# A decoded frame longer than this is converted in pieces of this many samples. Codecs
# decode a few milliseconds a frame, but PCM muxed as one packet decodes as one frame:
# converted whole, a 14 MB file of 8-bit audio took 845 MB (the resampler's float
# copies of the whole frame, at 16 kHz).
FRAME_PIECE = 1 << 16
# A DC offset beyond this blinds the speech detector; below it, the audio is left as it is
# (well-recorded speech averages below 0.01, and its digital silence should stay zero).
_DC_MAX = 0.05


class Mixer:
    """Frames of any rate, sample format and layout → mono (or one channel) at 16 kHz.

    The resampler is rebuilt when a frame's parameters change (concatenated files, a
    stream that switches from mono to stereo). Output is packed: PyAV cannot hand over
    planar audio of more than 8 channels. Channels of unknown order are averaged.
    """

    def __init__(self, channel: int | None) -> None:
        self.channel = channel
        self.key: tuple[str, str, int] | None = None
        self.resampler: av.AudioResampler | None = None
        self.average = False

    def convert(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """The frame's audio, converted; pass frames through `pieces` first."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        out = self.flush() if key != self.key else []
        if self.resampler is None:
            self.key = key
            layout = frame.layout
            known = len(layout.channels) <= 8 and all(c.name != "NONE" for c in layout.channels)
            self.average = self.channel is None and not known
            mono = self.channel is None and known
            self.resampler = av.AudioResampler(
                format="flt", layout="mono" if mono else None, rate=SAMPLE_RATE
            )
        out += [self._pick(f) for f in self.resampler.resample(frame)]
        return out

    def flush(self) -> list[np.ndarray]:
        if self.resampler is None:
            return []
        out = [self._pick(f) for f in self.resampler.resample(None)]
        self.resampler, self.key = None, None
        return out

    def _pick(self, frame: av.AudioFrame) -> np.ndarray:
        n = len(frame.layout.channels)
        samples = frame.to_ndarray().reshape(-1, n)
        if n == 1:
            return samples[:, 0]
        if self.average:
            mixed: np.ndarray = samples.mean(axis=1, dtype=np.float32)
            return mixed
        return samples[:, min(self.channel or 0, n - 1)]


def pieces(frame: av.AudioFrame, size: int = FRAME_PIECE) -> Iterator[av.AudioFrame]:
    """`frame`, or copies of its consecutive parts of at most `size` samples when it is
    longer (their memory is freed as each is converted). A layout PyAV cannot rebuild a
    frame in (channels of unknown order) keeps the frame whole."""
    if frame.samples <= size:
        yield frame
        return
    data = frame.to_ndarray()  # (channels, samples) if planar, else (1, samples * channels)
    per = 1 if frame.format.is_planar else len(frame.layout.channels)
    for start in range(0, frame.samples, size):
        part: Any = np.ascontiguousarray(data[:, start * per : (start + size) * per])
        try:
            piece = av.AudioFrame.from_ndarray(
                part, format=frame.format.name, layout=frame.layout.name
            )
        except (ValueError, av.FFmpegError):
            yield frame
            return
        piece.sample_rate = frame.sample_rate
        yield piece


class Cancellation:
    """Whether mixing a stream's channels to mono cancels them out.

    A recording whose channels are wired in opposite phase (one is the other inverted)
    mixes to near silence: no speech is found and the transcript is empty. This
    compares the energy of the mix with what channels that do not cancel would give
    (independent channels: the sum of their energies over the count squared), over the
    audible part of the stream's start; a mix far quieter than that means the channels
    cancel, and the loudest channel alone is the better signal. Channels that are
    independent, identical or partly silent mix at that level or above, however many
    there are (compared with the loudest channel instead, one voice among 10 or more
    otherwise silent channels of a recorder looked like a cancellation).
    """

    AUDIBLE_DB = -60.0  # a block counts when its loudest channel is above this (dBFS)
    CANCEL_DB = -20.0  # the mix this far below the loudest channel: they cancel
    ENOUGH_S = 20.0  # audible seconds that settle the question

    def __init__(self) -> None:
        self.mix = 0.0
        self.channels: np.ndarray | None = None
        self.audible = 0.0  # seconds

    def feed(self, mono: np.ndarray, channels: np.ndarray, rate: int) -> None:
        """One block: its mono mix (n,) and its channels (n, c), at `rate`."""
        if len(mono) == 0 or len(mono) != len(channels):
            return
        energy = np.mean(np.square(channels, dtype=np.float64), axis=0)
        if 10 * np.log10(float(energy.max()) + 1e-20) < self.AUDIBLE_DB:
            return
        self.mix += float(np.sum(np.square(mono, dtype=np.float64)))
        total = energy * len(mono)
        self.channels = total if self.channels is None else self.channels + total
        self.audible += len(mono) / rate

    @property
    def settled(self) -> bool:
        return self.audible >= self.ENOUGH_S

    def channel(self) -> int | None:
        """The channel to take instead of the mix, or None to mix as usual."""
        if self.channels is None:
            return None
        top = float(self.channels.max())
        loudest = int(np.flatnonzero(self.channels >= 0.8 * top)[0])  # the first, on a tie
        independent = float(self.channels.sum()) / len(self.channels) ** 2
        ratio = self.mix / independent
        return loudest if 10 * np.log10(ratio + 1e-20) < self.CANCEL_DB else None


class SameSound:
    """Whether all of a stream's channels carry one sound, up to a gain or a sign.

    A mono recording stored as stereo, or a call mixed onto both sides, has no speaker
    of its own on each channel: transcribed channel by channel (`--channels split`),
    every word would come out once per channel. This measures, over the audible part of
    the stream's start, how closely each channel follows the first (the normalised
    correlation of their samples). A call's two sides, or two microphones, fall far below
    SAME; the same signal written twice is at 1.
    """

    AUDIBLE_DB = -60.0  # a block counts when its loudest channel is above this (dBFS)
    SAME = 0.98  # |correlation| with the first channel at least this: the same sound
    ENOUGH_S = 20.0  # audible seconds that settle the question

    def __init__(self) -> None:
        self.cross: np.ndarray | None = None  # sum of channel 0 x channel i
        self.energy: np.ndarray | None = None  # sum of squares per channel
        self.audible = 0.0  # seconds

    def feed(self, channels: np.ndarray, rate: int) -> None:
        """One block of channels (n, c) at `rate`."""
        if len(channels) == 0 or channels.ndim != 2 or channels.shape[1] < 2:
            return
        x = channels.astype(np.float64)
        energy = np.sum(np.square(x), axis=0)
        if 10 * np.log10(float(energy.max()) / len(x) + 1e-20) < self.AUDIBLE_DB:
            return
        cross = x[:, 0] @ x
        self.cross = cross if self.cross is None else self.cross + cross
        self.energy = energy if self.energy is None else self.energy + energy
        self.audible += len(x) / rate

    @property
    def settled(self) -> bool:
        return self.audible >= self.ENOUGH_S

    def same(self) -> bool:
        """Whether every channel follows the first (False when nothing was audible)."""
        if self.cross is None or self.energy is None:
            return False
        norms = np.sqrt(self.energy[0] * self.energy) + 1e-20
        return bool(np.all(np.abs(self.cross / norms) >= self.SAME))


class Clock:
    """Where a frame belongs by its timestamp, to turn a jump in time into silence.

    Only forward jumps within the declared duration are filled, so a wild timestamp
    cannot make the decoder produce hours of silence that the file does not claim.
    """

    def __init__(
        self, stream: av.audio.AudioStream, format_name: str, duration: float | None
    ) -> None:
        self.origin: float | None = None
        if stream.start_time is not None and stream.time_base is not None:
            self.origin = float(stream.start_time * stream.time_base)
        self.limit = int(((duration or 0.0) + 1.0) * SAMPLE_RATE)
        self.enabled = format_name in _TIMED
        self.gaps = self.filled = 0  # jumps filled so far, and samples of silence they took
        self.started = False  # whether a frame with a timestamp has been placed yet

    def gap(self, frame: av.AudioFrame, at: int) -> int:
        """Samples of silence to put before `frame`, which would otherwise go at `at`.

        A first frame later than the stream's stated start is a late start, not a jump:
        in a video whose sound begins after ffmpeg's probe window, the stated start is
        the video's. It is filled so that times stay on the video's clock, and is not
        counted as damage."""
        if not self.enabled:
            return 0
        t = frame.time  # pts × time_base, in C: a Fraction per frame costs more than the frame
        if t is None:
            return 0
        if self.origin is None:
            self.origin = t
        first, self.started = not self.started, True
        due = round((t - self.origin) * SAMPLE_RATE)
        if due - at < _GAP_S * SAMPLE_RATE or due > self.limit:
            return 0
        if not first:
            self.gaps += 1
            self.filled += due - at
        return due - at


class Chunks:
    """Decoded audio gathered into chunks of `size` samples, made safe for the models:
    finite (NaN and infinities become silence), centred (no large DC offset) and within ±1
    (audio far too loud, such as float samples written on the 16-bit scale, is scaled
    down; a stray spike is clipped)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.parts: list[np.ndarray] = []
        self.have = 0
        self.samples = 0  # the stream's position: everything added so far, or skipped
        self.taken = 0  # the stream's position after the last chunk handed on
        self.gain = 1.0

    def skip_to(self, position: int) -> None:
        """Start at `position` samples into the stream (after a seek), before any audio."""
        assert self.samples == self.taken == self.have == 0, "skip_to after audio was added"
        self.samples = self.taken = position

    def placed(self, chunks: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """`chunks` taken from here, each with its position in the stream."""
        for chunk in chunks:
            yield self.taken - len(chunk), chunk

    def add(self, parts: list[np.ndarray]) -> None:
        for p in parts:
            self.parts.append(p)
            self.have += len(p)
            self.samples += len(p)

    def silence(self, n: int) -> None:
        while n > 0:  # in chunk-sized pieces, however long the gap
            step = min(n, self.size)
            self.add([np.zeros(step, np.float32)])
            n -= step

    def full(self) -> Iterator[np.ndarray]:
        while self.have >= self.size:
            yield self._take()

    def rest(self) -> Iterator[np.ndarray]:
        yield from self.full()
        if self.have:
            yield self._take()

    def _take(self) -> np.ndarray:
        joined = np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]
        chunk, left = joined[: self.size], joined[self.size :]
        self.parts = [left] if len(left) else []
        self.have = len(left)
        self.taken += len(chunk)
        return self._clean(chunk)

    def _clean(self, chunk: np.ndarray) -> np.ndarray:
        peak = float(np.abs(chunk).max())  # NaN if any sample is NaN: not "<= 1"
        if peak <= 1.0 and abs(float(chunk.mean(dtype=np.float64))) <= _DC_MAX:
            return chunk.astype(np.float32, copy=False)  # ordinary audio, as it is
        x = chunk.astype(np.float64)  # float32 extremes cannot overflow here
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        offset = x.mean()
        if abs(offset) > _DC_MAX:
            x -= offset
        if len(x) and float(np.abs(x).max()) > 1.0:
            level = float(np.quantile(np.abs(x), 0.999))
            if level > 1.0:
                self.gain = min(self.gain, 1.0 / level)
            x = np.clip(x * self.gain, -1.0, 1.0)
        return x.astype(np.float32)
