"""Echo between the channels of a call, for `--channels split`.

A call recorded in stereo has one side on each channel, but each channel also hears the
other side faintly: line echo, a headset's sidetone, a phone's speaker picked up by its
own microphone, typically 20-40 dB down. Transcribed channel by channel, that echo is
transcribed too, and every sentence comes out twice, once under each channel.

While each channel is decoded, `LevelTrack` keeps its loudness in 50 ms blocks (80
bytes a second of audio). Afterwards `drop_crosstalk` leaves out each word of a channel
over most of which another channel is at least `CROSSTALK_DB` louder: what that channel
transcribed there is the other side's voice. When both sides talk at once, each is the
louder on its own channel and both are kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from transcriber.domain import Segment
from transcriber.engines.segmenter import segments_from_words
from transcriber.media.frames import SAMPLE_RATE

BLOCK_S = 0.05
CROSSTALK_DB = 15.0
"""Another channel this much louder over a segment's words: the segment is its echo.
Echo is usually 20 dB down or more; the margin leaves room for two lines recorded at
different levels."""

AUDIBLE = 1e-6
"""A block counts only if some channel is louder than this mean square (-60 dBFS)."""
SHORT_WORD_S = 0.1

_BLOCK = round(BLOCK_S * SAMPLE_RATE)


@dataclass(slots=True)
class LevelTrack:
    """A channel's mean square in consecutive blocks of BLOCK_S, from its first sample."""

    blocks: list[np.ndarray] = field(default_factory=list)
    _rest: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def feed(self, chunk: np.ndarray) -> None:
        audio = np.concatenate([self._rest, chunk]) if len(self._rest) else chunk
        whole = len(audio) // _BLOCK * _BLOCK
        if whole:
            squares = np.square(audio[:whole], dtype=np.float64).reshape(-1, _BLOCK)
            self.blocks.append(squares.mean(axis=1).astype(np.float32))
        self._rest = audio[whole:].copy()

    def levels(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)


def drop_crosstalk(
    segments: Sequence[Segment],
    tracks: dict[str, LevelTrack],
    origin: float,
    margin_db: float = CROSSTALK_DB,
) -> tuple[list[Segment], int]:
    """`segments` (each labelled with the channel in `tracks` it was heard on) without
    the words that another channel is `margin_db` louder over, and how many stretches of
    such words were left out. A segment that keeps only some of its words is cut again
    around them. `origin` is the file time of the tracks' first block."""
    levels = {label: track.levels() for label, track in tracks.items()}
    ratio = 10 ** (margin_db / 10)

    def echo(speaker: str, start: float, end: float) -> bool:
        """Whether most audible blocks of the span are another channel's, by the margin."""
        rows = _blocks(start, end, origin)
        mine = _at(levels[speaker], rows)
        others = np.max([_at(v, rows) for k, v in levels.items() if k != speaker], axis=0)
        audible = np.maximum(mine, others) > AUDIBLE
        louder = others[audible] >= mine[audible] * ratio
        return bool(audible.any()) and float(np.mean(louder)) > 0.5

    kept: list[Segment] = []
    left_out = 0
    for s in segments:
        speaker = s.speaker or ""
        if speaker not in levels or len(levels) < 2:
            kept.append(s)
        elif not s.words:  # a checkpoint's segment kept without its words
            if echo(speaker, s.start, s.end):
                left_out += 1
            else:
                kept.append(s)
        else:
            flags = _word_flags(s, functools.partial(echo, speaker))
            left_out += sum(1 for i, f in enumerate(flags) if f and (i == 0 or not flags[i - 1]))
            if not any(flags):
                kept.append(s)
            elif not all(flags):
                words = [w for w, f in zip(s.words, flags, strict=True) if not f]
                kept += [
                    replace(part, speaker=s.speaker)
                    for part in segments_from_words(words, s.avg_logprob, s.no_speech_prob)
                ]
    return kept, left_out


def _blocks(start: float, end: float, origin: float) -> np.ndarray:
    """The indices of the blocks from `start` to `end` (file times)."""
    first = int((start - origin) / BLOCK_S)
    return np.arange(first, max(int(np.ceil((end - origin) / BLOCK_S)), first + 1))


def _word_flags(s: Segment, echo: Callable[[float, float], bool]) -> list[bool]:
    """Each word's verdict. A word the alignment squeezed to under SHORT_WORD_S says
    little by its own span: it takes the verdict of the word before it (after it, if first)."""
    flags: list[bool] = []
    for w in s.words:
        if w.end - w.start < SHORT_WORD_S and len(s.words) > 1:
            flags.append(flags[-1] if flags else echo(s.words[1].start, s.words[1].end))
        else:
            flags.append(echo(w.start, w.end))
    return flags


def _at(levels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The levels of these blocks; 0 for blocks past the track's end."""
    inside = (rows >= 0) & (rows < len(levels))
    out = np.zeros(len(rows), np.float32)
    out[inside] = levels[rows[inside]]
    return out
