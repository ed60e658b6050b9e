"""Retrying a task with changed options: what may change, and the options that result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from transcriber.api.schemas import whole_number
from transcriber.api.services import Services
from transcriber.api.strict import StrictBody, listed
from transcriber.domain import ChannelMode, TranscriptionOptions
from transcriber.errors import OptionError
from transcriber.jobs.codec import options_from_dict, options_to_dict
from transcriber.options import request_options

OPTION_FIELDS = {f.name for f in fields(TranscriptionOptions)}


NEW_TASK_ONLY = frozenset(
    {"file", "url", "beam_size", "min_speakers", "max_speakers", "start", "end", "webhook"}
)
"""Fields of a new task (`POST /api/tasks`) that a retry keeps as they were."""


class TaskRetry(StrictBody):
    """Options to change when retrying; what is left out stays as the task had it. A
    field it does not take is refused by name, as `POST /api/tasks` refuses one."""

    takes: ClassVar[str] = "a retry"

    @model_validator(mode="before")
    @classmethod
    def _no_new_task_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and (kept := sorted(NEW_TASK_ONLY & data.keys())):
            raise OptionError(
                f"a retry cannot change {listed(map(repr, kept))}: it keeps the task's"
                " media, clip, beam size, speaker range and webhook; make a new task"
                " (POST /api/tasks) to change them"
            )
        return data

    language: str | None = Field(None, max_length=16, description="auto, ru, en, …")
    model: str | None = Field(None, max_length=64, description="An installed model's name")
    diarize: bool | None = Field(None, description="Label speakers")
    speakers: Annotated[int, Field(ge=1, le=32), BeforeValidator(whole_number)] | None = Field(
        None, description="How many speakers"
    )
    word_timestamps: bool | None = None
    prompt: str | None = Field(
        None, max_length=4000, description="Names and terms (Whisper's prompt)"
    )
    task: Literal["transcribe", "translate"] | None = None
    channels: ChannelMode | None = Field(None, strict=False)  # its value, as JSON gives it


def retried_options(
    services: Services, stored: dict[str, Any], change: TaskRetry
) -> dict[str, Any]:
    """The stored options of a task with `change` applied, checked as a new request's."""
    old = options_from_dict(stored)
    diarize = old.diarize if change.diarize is None else change.diarize
    # `"speakers": null` asks for the count to be found again; leaving it out keeps it.
    speakers = change.speakers if "speakers" in change.model_fields_set else old.num_speakers
    new = request_options(
        services.settings,
        language=change.language or old.language or "auto",
        model=change.model or old.model,
        beam_size=old.beam_size,
        word_timestamps=old.word_timestamps
        if change.word_timestamps is None
        else change.word_timestamps,
        vad=old.vad,
        channels=change.channels or old.channels,
        diarize=diarize,
        speakers=speakers if diarize else None,
        min_speakers=old.min_speakers if diarize else None,
        max_speakers=old.max_speakers if diarize else None,
        initial_prompt=old.initial_prompt if change.prompt is None else change.prompt,
        start=old.clip.start,
        end=old.clip.end,
        task=change.task or ("translate" if old.translate else "transcribe"),
        min_language_probability=old.min_language_probability,
        min_speech_fraction=old.min_speech_fraction,
        model_paths=False,
    )
    kept = {k: v for k, v in stored.items() if k not in OPTION_FIELDS}  # webhook, source_url…
    return options_to_dict(new) | kept
