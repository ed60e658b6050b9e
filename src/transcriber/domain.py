"""Typed domain values shared by every stage. No I/O lives here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from transcriber.errors import OptionError


class Stage(str, Enum):
    """Pipeline stages, in the order they run."""

    loading = "loading"  # the model is being loaded
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
    overlap: bool = False  # someone else talks over a good part of it (diarization)


MAX_SPEAKERS_ALLOWED = 32


@dataclass(frozen=True, slots=True)
class SpeakerCount:
    """The speaker-count bounds, checked: `low` ≤ speakers ≤ `high` (`high` None = open)."""

    low: int
    high: int | None

    @staticmethod
    def of(
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> SpeakerCount:
        for name, value in (
            ("num_speakers", num_speakers),
            ("min_speakers", min_speakers),
            ("max_speakers", max_speakers),
        ):
            if value is not None and not 1 <= value <= MAX_SPEAKERS_ALLOWED:
                raise OptionError(
                    f"{name} must be between 1 and {MAX_SPEAKERS_ALLOWED}, got {value}"
                )
        if num_speakers is not None:
            if min_speakers is not None and min_speakers > num_speakers:
                raise OptionError(
                    f"min_speakers ({min_speakers}) is above num_speakers ({num_speakers})"
                )
            if max_speakers is not None and max_speakers < num_speakers:
                raise OptionError(
                    f"max_speakers ({max_speakers}) is below num_speakers ({num_speakers})"
                )
            return SpeakerCount(num_speakers, num_speakers)
        if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
            raise OptionError(
                f"min_speakers ({min_speakers}) is above max_speakers ({max_speakers});"
                " give min_speakers <= max_speakers"
            )
        return SpeakerCount(min_speakers or 1, max_speakers)


# Longer than any recording a service would take (a week); beyond it a time is a typo.
MAX_CLIP_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Clip:
    """The part of a file to transcribe: seconds from the start of its audio, `end` None
    meaning to the end. Timestamps in the result stay those of the whole file."""

    start: float = 0.0
    end: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_CLIP_S):
                raise OptionError(
                    f"the clip's {name} must be a number of seconds from 0 to {MAX_CLIP_S:.0f},"
                    f" got {value}"
                )
        if self.end is not None and self.end <= self.start:
            raise OptionError(
                f"the clip's end ({self.end:g} s) must come after its start ({self.start:g} s)"
            )

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None

    def length(self, duration: float | None) -> float | None:
        """Seconds of audio in the clip of a file `duration` long (None: unknown)."""
        end = self.end if duration is None else min(duration, self.end or duration)
        return None if end is None else max(0.0, end - self.start)


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
    clip: Clip = Clip()
    translate: bool = False  # Whisper's translate task: English text of any speech
    # Fail rather than transcribe when the detected language is less sure than this.
    min_language_probability: float | None = None
    # Fail when less than this share of the audio is speech (as the VAD finds it).
    min_speech_fraction: float | None = None

    def __post_init__(self) -> None:
        self.speaker_count()  # refuse impossible bounds wherever options are made
        for what, least in (("language confidence", self.min_language_probability),
                            ("share of speech", self.min_speech_fraction)):  # fmt: skip
            if least is not None and not 0.0 <= least <= 1.0:
                raise OptionError(f"a {what} runs from 0 to 1, got {least}")

    def speaker_count(self) -> SpeakerCount:
        return SpeakerCount.of(self.num_speakers, self.min_speakers, self.max_speakers)


@dataclass(frozen=True, slots=True)
class SpeakerStat:
    """A speaker label, how long that speaker talks in total, and when (file seconds;
    the turns of different speakers may overlap)."""

    label: str
    seconds: float
    turns: tuple[tuple[float, float], ...] = ()


class NoticeCode(str, Enum):
    """What a notice is about; the web page words each in the reader's language."""

    channel_alone = "channel_alone"  # the channels cancel in a mono mix: one was taken
    damaged_audio = "damaged_audio"  # packets that did not decode were skipped
    timestamp_gaps = "timestamp_gaps"  # jumps in the stream's time were kept as silence
    language_uncertain = "language_uncertain"  # the detected language may be wrong
    no_speech = "no_speech"  # the transcript is empty, and why
    crosstalk = "crosstalk"  # split channels: one channel's echo of another was left out
    unread_audio = "unread_audio"  # audio in the file past the end its header declares
    cut_short = "cut_short"  # the file ends before its stream does: the rest is missing
    other_tracks = "other_tracks"  # the file has several audio tracks: one was transcribed
    fewer_speakers = "fewer_speakers"  # fewer voices told apart than the speakers asked for
    one_sound = "one_sound"  # split asked for, but every channel carries the same sound
    format_change = "format_change"  # the stream changes format midway: the rest unread


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the reader of a transcript should know that did not stop it: audio that
    was damaged but transcribed, or a guess the service is unsure of. `message` is the
    English sentence; `values` are its numbers and names, to word it in other languages."""

    code: NoticeCode
    message: str
    values: dict[str, str | int | float] = field(default_factory=dict, compare=False)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


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
    task: str = "transcribe"  # or "translate": the text is English, `language` what was spoken
    notices: tuple[Notice, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def retext(self, change: Callable[[str], str]) -> Transcript:
        """The same transcript with `change` applied to each segment's and word's text."""
        segments = tuple(
            replace(
                s,
                text=change(s.text),
                words=tuple(replace(w, word=change(w.word)) for w in s.words),
            )
            for s in self.segments
        )
        return replace(self, segments=segments)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Work finished so far: segments up to `audio_done` seconds of the file (per channel).

    A run reports a checkpoint *step* after each batch: only the segments that batch
    added, with where the run then stands. `joined` folds the steps back into one."""

    segments: tuple[Segment, ...] = ()
    audio_done: dict[int, float] = field(default_factory=dict)  # channel → file seconds
    language: str | None = None
    language_probability: float | None = None

    @staticmethod
    def joined(steps: Iterable[Checkpoint]) -> Checkpoint | None:
        """The checkpoint that `steps`, first to last, add up to; None without any."""
        segments: list[Segment] = []
        last: Checkpoint | None = None
        done: dict[int, float] = {}
        for step in steps:
            segments.extend(step.segments)
            done.update(step.audio_done)
            last = step
        if last is None:
            return None
        return Checkpoint(tuple(segments), done, last.language, last.language_probability)


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress report: which stage, how far (0..1), and audio seconds done."""

    stage: Stage
    fraction: float
    audio_done: float
    audio_total: float
