"""The Engine role: speech windows in, typed segments out, lazily."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from transcriber.domain import Segment, Word
from transcriber.media.windows import SpeechWindow


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    language: str | None
    beam_size: int
    word_timestamps: bool
    initial_prompt: str | None = None
    # Decode again the speech a window's transcript skipped (see WhisperEngine); off
    # without VAD, where long word-free stretches are mostly silence.
    recover_gaps: bool = True
    task: str = "transcribe"  # or "translate" (to English)
    # Decode every window greedily first and search again with the beam only where the
    # greedy words are unsure (engines/gate.py), instead of beam-searching every window.
    gated: bool = False
    # `language` is the file's, detected from its first windows (the user named none):
    # each window's own language is detected too, and a window that is surely in
    # another language is decoded in that one (WhisperEngine.window_languages).
    detect_each: bool = False


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Segments of one window, on the file's time axis; ids are assigned by the pipeline."""

    window: SpeechWindow
    segments: tuple[Segment, ...]


class Engine(Protocol):
    name: str  # engine family, e.g. "whisper"
    model_name: str

    @property
    def multilingual(self) -> bool: ...

    def detect_language(self, windows: list[SpeechWindow]) -> tuple[str, float]:
        """The most likely language over these windows, and its probability."""
        ...

    def transcribe(
        self, windows: Iterable[SpeechWindow], options: DecodeOptions
    ) -> Iterator[WindowResult]:
        """Transcribe windows in order, batching as the engine sees fit."""
        ...

    def align(self, audio: np.ndarray, text: str, language: str) -> list[Word]:
        """The words of `text` with their times in `audio` (16 kHz mono, at most 30 s),
        in seconds from its start: how a person's edit gets word times."""
        ...
