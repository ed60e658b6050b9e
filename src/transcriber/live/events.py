"""What a live stream reports, as typed values; each protocol words them its own way.

Times are seconds of the stream (its first sample is 0). Every utterance has a
number; its events come in this order: `SpeechStarted`, then `Committed` and
`Partial` as it is decoded, `SpeechStopped` when the VAD hears it end, one or more
`Final` segments (a long utterance gives finals before it ends), and `UtteranceDone`.
"""

from __future__ import annotations

from dataclasses import dataclass

from transcriber.domain import Segment


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    utterance: int
    at: float  # where the speech starts, with the VAD's padding before it


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    utterance: int
    at: float  # where the VAD decided that the speech had ended (after the silence it waits)
    end: float  # where the utterance's audio ends (the last speech, with padding)


@dataclass(frozen=True, slots=True)
class Committed:
    """Words that two decodes in a row agree on: they will not change in partials."""

    utterance: int
    text: str


@dataclass(frozen=True, slots=True)
class Partial:
    """The utterance's text since its last final: `stable` is committed, the rest may change."""

    utterance: int
    text: str
    stable: str


@dataclass(frozen=True, slots=True)
class Final:
    utterance: int
    segment: Segment
    # Seconds from the VAD's end of speech reaching the stream to this final; None for a
    # final cut from a long utterance while it goes on.
    delay: float | None = None


@dataclass(frozen=True, slots=True)
class UtteranceDone:
    utterance: int
    text: str  # the utterance's finals, joined


@dataclass(frozen=True, slots=True)
class Marker:
    """Comes after every final of the audio before `LiveStream.mark` was called."""

    token: str


LiveEvent = SpeechStarted | SpeechStopped | Committed | Partial | Final | UtteranceDone | Marker
