"""Typed domain values shared by every stage. No I/O lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Stage(str, Enum):
    """Pipeline stages, in the order they run."""

    decoding = "decoding"
    vad = "vad"
    transcribing = "transcribing"
    diarizing = "diarizing"
    formatting = "formatting"


class ChannelMode(str, Enum):
    """How multi-channel audio is handled."""

    mix = "mix"
    split = "split"  # type: ignore[assignment]  # shadows str.split on purpose


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    word: str
    probability: float = 1.0
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    """What the user asked for; every front end (CLI, API, worker) builds one of these."""

    language: str | None = None  # None means detect
    model: str = "base"
    beam_size: int = 5
    word_timestamps: bool = False
    vad: bool = True
    channels: ChannelMode = ChannelMode.mix
    initial_prompt: str | None = None
    diarize: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None


@dataclass(frozen=True, slots=True)
class SpeakerStat:
    """A speaker label and how long that speaker talks in total."""

    label: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """The result of one file: the single value every format is rendered from."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float | None
    duration: float
    model: str = ""
    engine: str = ""
    processing_time: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    speakers: tuple[SpeakerStat, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report: which stage, how far (0..1), and audio seconds done."""

    stage: Stage
    fraction: float
    audio_done: float
    audio_total: float
