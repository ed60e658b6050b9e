"""Versions of a task's transcript: a finished task transcribed again, the earlier text kept.

A live session's saved task holds the text as it was heard live; `POST /rerun` puts it
through the full offline pipeline (the whole recording at once, the best text and, with
`diarize`, speaker labels) as a new version of the same task. Any completed task can be
re-run so, with other options. Earlier versions stay readable, in every format.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response
from pydantic import BaseModel

from transcriber.api import transcripts
from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.schemas import TaskPublic, content, responses_for
from transcriber.api.services import Services
from transcriber.api.uploads import UploadRoute, upload_route
from transcriber.errors import ConflictError, NotFoundError
from transcriber.formats import FORMATS, FormatName
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.view import public
from transcriber.options import request_options

router = APIRouter(prefix="/api", tags=["tasks"], route_class=UploadRoute)


class Version(BaseModel):
    version: int
    source: Literal["live", "offline"]
    finished_at: str | None


class VersionList(BaseModel):
    items: list[Version]
    current: str


def version_key(task_id: str, number: int) -> str:
    return f"{task_id}/versions/{number}.json"


def _task(services: Services, owner: str, task_id: str) -> TaskRecord:
    task = services.jobs.get(task_id, owner=owner)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    return task


@router.post(
    "/tasks/{task_id}/rerun",
    status_code=202,
    response_model=TaskPublic,
    responses=responses_for(401, 404, 409, 413, 422, 429, 503, 507),
)
# work for the queue: its room and the key's quota first; unknown fields are refused
@upload_route(queued=True, known_extra=frozenset())
def rerun_task(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    diarize: Annotated[
        Literal["true", "false"] | None,
        Form(description="Label speakers this time (true) or not (false)"),
    ] = None,
    language: Annotated[str | None, Form(max_length=16, description="auto, ru, en, …")] = None,
) -> dict[str, Any]:
    """Transcribe a completed task again from its stored input, keeping its current
    transcript, as edited, as version N (`GET /api/tasks/{id}/versions/N`); the new
    transcript starts with no edits."""
    task = _task(services, owner, task_id)
    if task.status != TaskStatus.completed or not task.result_key:
        raise ConflictError(
            f"task {task_id} is {task.status.value}; only a completed task is transcribed again"
        )
    if not services.store.exists(task.input_key):
        raise ConflictError(f"task {task_id} has no input any more; upload the file again")
    options = dict(task.options)
    if language is not None:
        chosen = request_options(services.settings, language=language).language
        options["language"] = chosen
    if diarize is not None:
        options["diarize"] = diarize == "true"
    versions = list(options.get("versions") or [])
    number = len(versions) + 1
    # The version kept is the transcript as people left it, edits and speaker names in;
    # the new run starts from the machine's text with no edits (JobStore.rerun).
    services.store.put_bytes(version_key(task_id, number), transcripts.document(services, task))
    source = "live" if options.get("live") and not versions else "offline"
    finished = task.finished_at.isoformat() if task.finished_at else None
    versions.append({"version": number, "source": source, "finished_at": finished})
    if not services.jobs.rerun(task_id, options | {"versions": versions}):
        raise ConflictError(f"task {task_id} changed meanwhile; look at it again")
    services.queue.notify(task_id)
    now = _task(services, owner, task_id)
    view = public(now, services.jobs.queue_position(now))
    services.events.publish(TaskEvent(task_id, owner, "status", view))
    return view


@router.get(
    "/tasks/{task_id}/versions",
    response_model=VersionList,
    responses=responses_for(401, 404, 503),
)
def list_versions(task_id: str, services: ServicesDep, owner: CurrentOwner) -> dict[str, Any]:
    """The earlier versions of a task's transcript, oldest first; the current one is
    `GET /api/tasks/{id}/result`."""
    task = _task(services, owner, task_id)
    return {"items": list(task.options.get("versions") or []), "current": task.status.value}


@router.get(
    "/tasks/{task_id}/versions/{number}",
    response_class=Response,
    responses={
        200: content(*dict.fromkeys(f.content_type for f in FORMATS.values())),
        **responses_for(401, 404, 409, 422, 503),
    },
)
def get_version(
    task_id: str,
    number: int,
    services: ServicesDep,
    owner: CurrentOwner,
    format: Annotated[
        FormatName, Query(description="json, txt, srt, vtt, tsv, docx or rttm")
    ] = "json",
) -> Response:
    fmt: str = format
    task = _task(services, owner, task_id)
    known = [v["version"] for v in task.options.get("versions") or []]
    if number not in known:
        raise NotFoundError(f"task {task_id} has no version {number}")
    raw = services.store.get_bytes(version_key(task_id, number))
    return transcripts.download(task, raw, fmt, f".v{number}")
