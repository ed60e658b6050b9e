"""Streaming speech detection with the Silero VAD ONNX model that faster-whisper bundles.

Audio is fed in chunks; finished speech regions come out as soon as the
silence after them is long enough, so memory stays bounded however long the
file is. Regions are capped at `max_region_s` and cut at the quietest frame.
Each region also lists its inner pauses (gaps too short to end it), so that
the window builder can cut a region between words to fill a window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.errors import ModelError
from transcriber.media.frames import SAMPLE_RATE
from transcriber.models.packs import check_weights

FRAME = 512  # samples per VAD frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees
# Silero VAD goes deaf to speech far below a normal recording level: JFK's speech
# peaking at -55 dBFS gave no region at all (Whisper reads it word for word: its
# features are normalised per window). Once QUIET_AFTER_S of a stream has gone by
# without a peak above QUIET_PEAK, the model hears it raised to that peak, by at most
# QUIET_GAIN; ordinary recordings peak above it and are heard as they are. (Not
# sooner: the quiet lead-in of a live stream, raised, moved where its speech began.)
# A file is read in 5 s chunks, so its first chunk is past it already.
QUIET_PEAK = 10 ** (-40 / 20)
QUIET_GAIN = 10 ** (30 / 20)
QUIET_AFTER_S = 4.0
# Silero's recurrent state, carried through a long stretch without speech (music,
# applause, noise), makes it slow to hear the speech that follows: after 40 s of
# applause the first 5 s of a speech were below the threshold (0.3-0.47, against
# 0.82-0.89 heard afresh), after 40 s of music the first second. So after this long
# without speech the state starts afresh, as at the start of a file, where speech that
# follows 3-6 s of any such sound is heard at once.
RESET_AFTER_S = 4.0


@dataclass(frozen=True, slots=True)
class Pause:
    """A gap between words inside a region: its middle (a sample index) and its length."""

    at: int
    frames: int


@dataclass(frozen=True, slots=True)
class Region:
    """Speech between two sample indices of the decoded stream."""

    start: int
    end: int
    pauses: tuple[Pause, ...] = ()  # strictly inside (start, end), in order

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE

    def split(self, at: int) -> tuple[Region, Region]:
        """The parts before and after sample `at`, each keeping its own pauses."""
        if not self.start < at < self.end:
            raise ValueError(f"cut {at} outside region {self.start}..{self.end}")
        before = tuple(p for p in self.pauses if p.at < at)
        after = tuple(p for p in self.pauses if p.at > at)
        return Region(self.start, at, before), Region(at, self.end, after)


@dataclass(frozen=True, slots=True)
class VadParams:
    threshold: float = 0.5
    min_silence_ms: int = 1000
    speech_pad_ms: int = 400
    min_speech_ms: int = 250
    max_region_s: float = 30.0


VAD_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
"""Silero VAD v6 as faster-whisper 1.2.1 ships it."""
VAD_INSTALL = "pip install 'faster-whisper>=1.2.1,<2'"


@functools.cache
def _session() -> object:
    import onnxruntime
    from faster_whisper.utils import get_assets_path

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    path = Path(get_assets_path()) / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelError(f"{path} is missing: the VAD needs faster-whisper>=1.2.1 ({VAD_INSTALL})")
    check_weights(path, VAD_SHA256, VAD_INSTALL)
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=opts
    )


class SpeechDetector:
    """Feed audio with `feed`, collect regions; call `finish` once at the end."""

    def __init__(self, params: VadParams | None = None) -> None:
        self.p = params or VadParams()
        self._session = _session()
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._rest = np.zeros(0, np.float32)
        self._frame = 0  # index of the next frame to classify
        self._neg = max(self.p.threshold - 0.15, 0.01)
        self._min_silence = max(1, round(self.p.min_silence_ms * SAMPLE_RATE / 1000 / FRAME))
        self._min_speech = round(self.p.min_speech_ms * SAMPLE_RATE / 1000 / FRAME)
        self._pad = min(self.p.speech_pad_ms, self.p.min_silence_ms) * SAMPLE_RATE // 1000
        self._max = int(self.p.max_region_s * SAMPLE_RATE - 2 * self._pad) // FRAME
        self._start: int | None = None  # first frame of the open region
        self._start_forced = False
        self._last_speech = 0
        self._silence = 0
        self._probs: list[float] = []
        self._gap = 0  # frames below the threshold since the last speech frame
        self._pauses: list[Pause] = []  # inner pauses of the open region
        self._emitted_end = 0
        self._peak = 0.0  # the stream's largest sample so far
        self._idle = 0  # frames without speech since the state last started afresh
        self._reset = round(RESET_AFTER_S * SAMPLE_RATE / FRAME)

    def feed(self, audio: np.ndarray) -> list[Region]:
        buf = np.concatenate([self._rest, audio]) if len(self._rest) else audio
        n = len(buf) // FRAME
        self._rest = buf[n * FRAME :].copy()
        if n == 0:
            return []
        return self._classify(buf[: n * FRAME].reshape(n, FRAME))

    def finish(self) -> list[Region]:
        out: list[Region] = []
        if len(self._rest):
            frame = np.zeros((1, FRAME), np.float32)
            frame[0, : len(self._rest)] = self._rest
            total = self._frame * FRAME + len(self._rest)
            self._rest = np.zeros(0, np.float32)
            out += self._classify(frame)
        else:
            total = self._frame * FRAME
        if self._start is not None and self._last_speech + 1 - self._start >= self._min_speech:
            out.append(self._region(self._start, self._frame, total, forced_end=True))
        self._start = None
        return out

    def pending(self) -> Region | None:
        """The open region as it would be emitted if the speech ended now, with its inner
        pauses so far, or None while there is no speech (or too little to count yet).
        Changes nothing: a live stream reads it to announce speech, to start decoding
        before the region closes, and to cut a long one between words."""
        if self._start is None or self._last_speech + 1 - self._start < self._min_speech:
            return None
        s = self._start * FRAME if self._start_forced else self._start * FRAME - self._pad
        s = max(s, self._emitted_end, 0)
        pauses = tuple(q for q in self._pauses if q.at > s)
        return Region(s, (self._last_speech + 1) * FRAME + self._pad, pauses)

    @property
    def quiet_frames(self) -> int:
        """Frames since the last speech frame of the open region (0 outside speech)."""
        return self._gap if self._start is not None else 0

    def earliest_needed(self) -> int:
        """The first sample a region not yet emitted could still include."""
        frame = self._frame if self._start is None else self._start
        return max(self._emitted_end, frame * FRAME - self._pad)

    def _classify(self, frames: np.ndarray) -> list[Region]:
        self._peak = max(self._peak, float(np.abs(frames).max()))
        heard = (self._frame + len(frames)) * FRAME  # samples, with these frames
        if self._peak < QUIET_PEAK and heard >= QUIET_AFTER_S * SAMPLE_RATE:
            frames = frames * min(QUIET_GAIN, QUIET_PEAK / max(self._peak, 1e-9))
        ctx = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT:]])
        self._context = frames[-1, -CONTEXT:].copy()
        batch = np.concatenate([ctx, frames], axis=1).astype(np.float32, copy=False)
        probs = self._probabilities(batch)
        out: list[Region] = []
        for k in range(len(probs)):
            region = self._step(float(probs[k]))
            if region is not None:
                out.append(region)
            self._frame += 1
            if self._idle >= self._reset:
                # Afresh from the next frame on: the rest of this batch is heard again.
                self._idle = 0
                self._h = np.zeros_like(self._h)
                self._c = np.zeros_like(self._c)
                if k + 1 < len(probs):
                    probs[k + 1 :] = self._probabilities(batch[k + 1 :])
        return out

    def _probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Speech probabilities of consecutive frames (each with its context), carrying
        the model's state on."""
        probs, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.array(probs, np.float32).reshape(-1)

    def _step(self, p: float) -> Region | None:
        i = self._frame
        self._idle = 0 if self._start is not None or p >= self.p.threshold else self._idle + 1
        if self._start is None:
            if p >= self.p.threshold:
                self._start, self._start_forced = i, False
                self._last_speech, self._silence, self._probs = i, 0, [p]
                self._gap, self._pauses = 0, []
            return None
        self._probs.append(p)
        if p >= self.p.threshold:
            if self._gap:
                middle = (i - self._gap) * FRAME + self._gap * FRAME // 2
                self._pauses.append(Pause(middle, self._gap))
            self._last_speech, self._silence, self._gap = i, 0, 0
        else:
            self._gap += 1
            if p < self._neg:
                self._silence += 1
        if self._silence >= self._min_silence:
            start, end = self._start, self._last_speech + 1
            self._start = None
            if end - start < self._min_speech:
                return None
            return self._region(start, end, None, forced_end=False)
        if i + 1 - self._start >= self._max:
            # Too long for one window: cut at the quietest frame of the second half.
            half = len(self._probs) // 2
            cut = self._start + half + int(np.argmin(self._probs[half:]))
            cut = max(cut, self._start + 1)
            region = self._region(self._start, cut, None, forced_end=True)
            self._probs = self._probs[cut - self._start :]
            self._pauses = [q for q in self._pauses if q.at > cut * FRAME]
            self._start, self._start_forced = cut, True
            return region
        return None

    def _region(self, start: int, end: int, total: int | None, forced_end: bool) -> Region:
        s = start * FRAME if self._start_forced else max(0, start * FRAME - self._pad)
        s = max(s, self._emitted_end)
        e = end * FRAME if forced_end else end * FRAME + self._pad
        if total is not None:
            e = min(e, total)
        self._emitted_end = e
        pauses = tuple(q for q in self._pauses if s < q.at < e)
        return Region(s, e, pauses)
