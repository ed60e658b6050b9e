"""/api/tasks/{id}/transcript: the transcript as an editor reads and changes it.

`GET` gives the current transcript with speakers under their labels, the speaker names,
the revision, and the machine's version of every segment a person changed. `PATCH`
changes segment text, a segment's speaker and speaker names, given the revision it was
read at: `409 edit_conflict` when someone else saved in between, never a silent
overwrite. `POST …/transcript/undo` takes back the latest change. `…/peaks` is the
loudness of the media over time, for the editor's waveform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Query
from pydantic import Field, model_validator

from transcriber.api import transcripts
from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.schemas import Peaks, TranscriptEditor, WholeNumber, responses_for
from transcriber.api.services import Services
from transcriber.api.strict import StrictBody, refuse_unknown
from transcriber.api.transcripts import SegmentEdit
from transcriber.edits import MAX_SEGMENT_TEXT, Edited, apply, undo_target
from transcriber.errors import FileMissingError, NotFoundError, OptionError, naming
from transcriber.formats.json_doc import segment_to_dict, to_dict
from transcriber.jobs.codec import options_from_dict
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.worker import peaks_key
from transcriber.media.decode import probe
from transcriber.media.peaks import MAX_WIDTH, measure, shrink

router = APIRouter(prefix="/api", tags=["transcript editing"])


MAX_SEGMENT_CHANGES = 500
MAX_SPEAKER_NAMES = 64


class SegmentChangeIn(StrictBody):
    takes: ClassVar[str] = "a segment's entry"
    id: WholeNumber = Field(description="The segment's id, as the transcript numbers it")
    text: str | None = Field(
        None, max_length=2 * MAX_SEGMENT_TEXT, description="New text; empty removes the words"
    )
    speaker: str | None = Field(None, max_length=64, description="Another speaker's label")
    revert: bool = Field(
        False, description="Back to the machine's version (with no text or speaker)"
    )

    @model_validator(mode="after")
    def _revert_alone(self) -> SegmentChangeIn:
        if self.revert and (self.text is not None or self.speaker is not None):
            raise OptionError(
                f"segment {self.id}: revert puts the machine's version back and takes no"
                " text or speaker with it; send those in an entry after the revert"
            )
        return self


class TranscriptPatch(StrictBody):
    revision: WholeNumber = Field(ge=0, description="The revision the changes were made on")
    segments: list[SegmentChangeIn] = Field(default_factory=list, max_length=MAX_SEGMENT_CHANGES)
    speaker_names: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict,
        max_length=MAX_SPEAKER_NAMES,
        description='{"A": "Анна"}; "" removes a name',
    )

    @model_validator(mode="before")
    @classmethod
    def _counted_before_read(cls, data: Any) -> Any:
        """The counts first, so that 5000 entries get one line, not an error each; then
        each segment entry's keys, by its place in the list."""
        if not isinstance(data, Mapping):
            return data
        segments, names = data.get("segments"), data.get("speaker_names")
        for what, many, most in (
            ("segments", segments, MAX_SEGMENT_CHANGES),
            ("speaker_names", names, MAX_SPEAKER_NAMES),
        ):
            if isinstance(many, list | Mapping) and len(many) > most:
                raise OptionError(f"{what} has {len(many)} entries; at most {most} at once")
        if isinstance(segments, list):
            known = SegmentChangeIn.field_names()
            for i, entry in enumerate(segments):
                if isinstance(entry, Mapping):
                    takes = SegmentChangeIn.takes
                    refuse_unknown(entry, known, takes=takes, where=f"segments[{i}]")
        return data


class UndoRequest(StrictBody):
    revision: WholeNumber = Field(ge=0, description="The revision the undo was asked on")


def _task(services: Services, owner: str, task_id: str) -> TaskRecord:
    task = services.jobs.get(task_id, owner=owner)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    return task


def editor_view(services: Services, task: TaskRecord) -> dict[str, Any]:
    machine = transcripts.original(services, task)
    revisions = services.jobs.edits.revisions(task.id)
    edited: Edited = apply(machine, revisions)
    by_id = {s.id: s for s in machine.segments}
    return {
        "id": task.id,
        "revision": edited.revision,
        "speaker_names": dict(edited.speaker_names),
        "edited": sorted(edited.edited),
        "original": {str(i): segment_to_dict(by_id[i]) for i in sorted(edited.edited)},
        "can_undo": undo_target(revisions) is not None,
        "transcript": to_dict(edited.transcript),
    }


@router.get(
    "/tasks/{task_id}/transcript",
    response_model=TranscriptEditor,
    responses=responses_for(401, 404, 409, 503),
)
async def get_transcript(
    task_id: str, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    """The transcript to edit (the machine's: `/result?version=original`)."""

    def read() -> dict[str, Any]:
        return editor_view(services, _task(services, owner, task_id))

    return await asyncio.to_thread(read)


@router.patch(
    "/tasks/{task_id}/transcript",
    response_model=TranscriptEditor,
    responses=responses_for(400, 401, 404, 409, 422, 503),
)
async def patch_transcript(
    task_id: str, body: TranscriptPatch, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    """Save changes; edited text gets word times by alignment with the task's model."""
    changes = [SegmentEdit(c.id, c.text, c.speaker, c.revert) for c in body.segments]

    def save() -> dict[str, Any]:
        task = _task(services, owner, task_id)
        transcripts.edit(services, task, body.revision, changes, body.speaker_names)
        return editor_view(services, task)

    return await asyncio.to_thread(save)


@router.post(
    "/tasks/{task_id}/transcript/undo",
    response_model=TranscriptEditor,
    responses=responses_for(400, 401, 404, 409, 422, 503),
)
async def undo_edit(
    task_id: str, body: UndoRequest, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    def take_back() -> dict[str, Any]:
        task = _task(services, owner, task_id)
        transcripts.undo(services, task, body.revision)
        return editor_view(services, task)

    return await asyncio.to_thread(take_back)


@router.get(
    "/tasks/{task_id}/peaks",
    response_model=Peaks,
    responses=responses_for(401, 404, 409, 422, 503),
)
async def get_peaks(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    width: Annotated[int, Query(ge=1, le=MAX_WIDTH, description="Numbers wanted")] = 1000,
) -> dict[str, Any]:
    """The media's loudness (0…100) in at most `width` steps, each `seconds_per_peak`
    long from file second `start`. Kept when the task ran; measured once otherwise."""

    def read() -> dict[str, Any]:
        task = _task(services, owner, task_id)
        transcripts.completed(task)
        key = peaks_key(task.id)
        if not services.store.exists(key):
            with (
                naming(task.input_key, task.filename),
                services.store.local_path(task.input_key) as path,
                naming(path, task.filename),
            ):
                options = options_from_dict(task.options)
                meter = measure(path, probe(path).start_offset, options.clip)
            services.store.put_bytes(key, meter.to_json())
        return shrink(services.store.get_bytes(key), width)

    try:
        return await asyncio.to_thread(read)
    except FileMissingError:
        raise NotFoundError(f"the media of task {task_id} was removed") from None
