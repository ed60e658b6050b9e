"""One way from a front end's request to TranscriptionOptions, for the CLI and the API.

The front ends differ in how a user spells a request (flags, form fields); what the
words mean is decided here: `auto` detects the language, an unset model or beam
comes from the settings, a speaker count implies diarization, and impossible
values are refused with an OptionError before any work starts.
"""

from __future__ import annotations

import re

from transcriber.config import Settings
from transcriber.domain import ChannelMode, TranscriptionOptions
from transcriber.errors import OptionError

LANGUAGE = re.compile(r"^(auto|[a-z]{2,3})$")


def request_options(
    settings: Settings,
    *,
    language: str = "auto",
    model: str | None = None,
    beam_size: int | None = None,
    word_timestamps: bool = False,
    vad: bool = True,
    channels: ChannelMode = ChannelMode.mix,
    diarize: bool = False,
    speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> TranscriptionOptions:
    if not LANGUAGE.match(language):
        raise OptionError(f"language {language!r} is not a language code; use auto, ru or en")
    return TranscriptionOptions(
        language=None if language == "auto" else language,
        model=model or settings.model,
        beam_size=beam_size or settings.beam_size,
        word_timestamps=word_timestamps,
        vad=vad,
        channels=channels,
        diarize=diarize or speakers is not None,
        num_speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
    )
