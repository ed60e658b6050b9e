"""One way from a front end's request to TranscriptionOptions, for the CLI and the API.

The front ends differ in how a user spells a request (flags, form fields); what the
words mean is decided here: `auto` detects the language, an unset model or beam
comes from the settings, a speaker count implies diarization, and impossible
values are refused with an OptionError before any work starts.
"""

from __future__ import annotations

import functools
import re

from transcriber.config import Settings
from transcriber.domain import ChannelMode, Clip, TranscriptionOptions
from transcriber.errors import ModelNotFoundError, OptionError
from transcriber.models.packs import PACKS
from transcriber.models.resolve import canonical

# A model a remote request may name: a catalogue or hub name, never a folder path.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@functools.cache
def whisper_languages() -> frozenset[str]:
    """The language codes Whisper was trained on (ru, en, uk, … 100 in all)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


# A prompt steers spelling with names and terms; Whisper keeps only its last 223 tokens.
MAX_PROMPT_CHARS = 4000


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
    initial_prompt: str | None = None,
    start: float | None = None,
    end: float | None = None,
    task: str = "transcribe",
    min_language_probability: float | None = None,
    min_speech_fraction: float | None = None,
    model_paths: bool = True,
) -> TranscriptionOptions:
    """`model_paths=False` (remote requests) refuses a model given as a folder path.
    `start` and `end` (seconds of the file) transcribe only that part of it."""
    language = language.strip().lower()
    if language != "auto" and language not in whisper_languages():
        raise OptionError(
            f"language {language!r} is not one Whisper knows; use auto, ru, en"
            " or another two-letter code Whisper supports",
            param="language",
        )
    if model is not None and not model_paths:
        check_requested_model(settings, model)
    task = task.strip().lower()
    if task not in ("transcribe", "translate"):
        raise OptionError(
            f"task {task!r}: use transcribe, or translate (into English)", param="task"
        )
    if initial_prompt is not None and len(initial_prompt) > MAX_PROMPT_CHARS:
        raise OptionError(
            f"the prompt is {len(initial_prompt)} characters; at most {MAX_PROMPT_CHARS}"
            " (Whisper reads only its last 223 tokens)",
            param="prompt",
        )
    return TranscriptionOptions(
        language=None if language == "auto" else language,
        model=model or settings.model,
        beam_size=beam_size or settings.beam_size,
        word_timestamps=word_timestamps,
        vad=vad,
        channels=channels,
        # A speaker count asks for speakers, whichever count it is (`--max-speakers 3`
        # alone was ignored without a word).
        diarize=diarize or any(n is not None for n in (speakers, min_speakers, max_speakers)),
        num_speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        initial_prompt=(initial_prompt or "").strip() or None,
        clip=Clip(start or 0.0, end),
        translate=task == "translate",
        min_language_probability=min_language_probability,
        min_speech_fraction=min_speech_fraction,
    )


@functools.cache
def hub_model_names() -> frozenset[str]:
    """The Whisper models faster-whisper can download by name (tiny … large-v3, turbo)."""
    from faster_whisper.utils import available_models

    return frozenset(available_models())


def check_requested_model(settings: Settings, model: str) -> None:
    """Refuse, before any upload is kept, a model a remote request cannot have: a folder
    path, a name no catalogue knows (a typo would otherwise fail in the worker, after
    the upload, as a download error), or a pack whose package is not installed."""
    if not MODEL_NAME.match(model):
        raise OptionError(
            f"model {model!r} is not a model name; a request can name an installed model"
            " (see `transcriber models list`), not a folder on the server",
            param="model",
        )
    if model == settings.model:
        return
    name = canonical(model)
    pack = PACKS.get(name)
    installed = ", ".join(n for n, p in PACKS.items() if p.installed())
    if pack is not None and not pack.installed():
        raise ModelNotFoundError(
            f"model {name!r} is not installed on this server; installed: {installed}",
            param="model",
        )
    if pack is None and name not in hub_model_names():
        raise ModelNotFoundError(
            f"model {model!r} is not a Whisper model this service knows; installed here:"
            f" {installed}; Whisper's own sizes ({', '.join(sorted(hub_model_names()))})"
            " are downloaded when the server has internet",
            param="model",
        )


_CLOCK = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> float:
    """Seconds from `90`, `1:30`, `01:02:03.5` (hours:minutes:seconds); OptionError if not."""
    m = _CLOCK.match(text.strip())
    if not m:
        raise OptionError(f"{text!r} is not a time; write seconds (90) or [h:]mm:ss (1:30)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    if (m.group(2) is not None and seconds >= 60) or (m.group(1) is not None and minutes >= 60):
        raise OptionError(f"{text!r} is not a time: minutes and seconds run from 0 to 59")
    return hours * 3600 + minutes * 60 + seconds
