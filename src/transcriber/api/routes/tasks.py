"""/api/tasks: submit, list, read, fetch results, cancel and delete, retry."""

from __future__ import annotations

import asyncio
import mimetypes
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from transcriber.api import transcripts
from transcriber.api.deps import CurrentOwner, MediaOwner, ServicesDep
from transcriber.api.ranges import ranged_response
from transcriber.api.retry import TaskRetry, retried_options
from transcriber.api.schemas import TaskList, TaskPublic, content, responses_for
from transcriber.api.services import Services
from transcriber.api.submit import cancel, submit, submit_url
from transcriber.api.uploads import UploadRoute, upload_route
from transcriber.domain import ChannelMode
from transcriber.errors import ConflictError, FileMissingError, NotFoundError, OptionError
from transcriber.formats import FORMATS, FormatName
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TERMINAL_STATUSES, TaskStatus
from transcriber.jobs.view import public
from transcriber.jobs.webhooks import make_webhook
from transcriber.options import parse_time, request_options

router = APIRouter(prefix="/api", tags=["tasks"], route_class=UploadRoute)


def _view(services: Services, task: TaskRecord) -> dict[str, Any]:
    return public(task, services.jobs.queue_position(task))


def _task(services: Services, owner: str, task_id: str) -> TaskRecord:
    task = services.jobs.get(task_id, owner=owner)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    return task


@router.post(
    "/tasks",
    status_code=202,
    response_model=TaskPublic,
    responses=responses_for(400, 401, 408, 413, 415, 422, 429, 503, 507),
)
@upload_route(known_extra=frozenset({"formats"}))  # formats: taken, and ignored, before
async def create_task(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    file: Annotated[UploadFile | None, File(description="Video or audio file")] = None,
    url: Annotated[
        str | None,
        Form(
            max_length=8192, description="Or an http(s) URL of the media, which the worker fetches"
        ),
    ] = None,
    language: Annotated[str, Form(description="auto, ru, en, …")] = "auto",
    model: Annotated[str | None, Form()] = None,
    diarize: Annotated[bool, Form(description="Label speakers")] = False,
    speakers: Annotated[int | None, Form(ge=1, le=32)] = None,
    min_speakers: Annotated[int | None, Form(ge=1, le=32)] = None,
    max_speakers: Annotated[int | None, Form(ge=1, le=32)] = None,
    beam_size: Annotated[int | None, Form(ge=1, le=10)] = None,
    word_timestamps: Annotated[bool, Form()] = False,
    channels: Annotated[ChannelMode, Form()] = ChannelMode.mix,
    webhook: Annotated[
        str | None,
        Form(max_length=2048, description="URL that gets the task as JSON (POST) when it ends"),
    ] = None,
    prompt: Annotated[
        str | None, Form(description="Names and terms to spell as you do (Whisper's prompt)")
    ] = None,
    whisper_task: Annotated[
        str,
        Form(alias="task", max_length=16, description="transcribe, or translate (into English)"),
    ] = "transcribe",
    start: Annotated[
        str | None, Form(max_length=32, description="Transcribe from: seconds or [h:]mm:ss")
    ] = None,
    end: Annotated[
        str | None, Form(max_length=32, description="Transcribe up to: seconds or [h:]mm:ss")
    ] = None,
) -> dict[str, Any]:
    options = request_options(
        services.settings,
        language=language,
        model=model,
        beam_size=beam_size,
        word_timestamps=word_timestamps,
        channels=channels,
        diarize=diarize,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        initial_prompt=prompt,
        start=parse_time(start) if start else None,
        end=parse_time(end) if end else None,
        task=whisper_task,
        model_paths=False,
    )
    # The URL's host is looked up (DNS): not on the event loop.
    hook = await asyncio.to_thread(make_webhook, webhook, services.settings.allow_private_urls)
    extra = {"webhook": hook.to_dict() if hook else None}
    if (file is None) == (not url):
        raise OptionError("give the media as a file upload or as a url, one of the two")
    if url:
        task = await submit_url(services, owner, url, options, extra)
    else:
        assert file is not None
        task = await submit(services, owner, file, options, extra)
    return await asyncio.to_thread(_view, services, task)


@router.get("/tasks", response_model=TaskList, responses=responses_for(401, 422, 503))
def list_tasks(
    services: ServicesDep,
    owner: CurrentOwner,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,  # a database integer
) -> dict[str, Any]:
    items, total = services.jobs.list_tasks(owner, status, limit, offset)
    return {"items": [_view(services, t) for t in items], "total": total,
            "limit": limit, "offset": offset}  # fmt: skip


@router.get("/tasks/{task_id}", response_model=TaskPublic, responses=responses_for(401, 404, 503))
def get_task(task_id: str, services: ServicesDep, owner: CurrentOwner) -> dict[str, Any]:
    return _view(services, _task(services, owner, task_id))


@router.get(
    "/tasks/{task_id}/result",
    response_class=Response,
    responses={
        200: content(*dict.fromkeys(f.content_type for f in FORMATS.values())),
        **responses_for(401, 404, 409, 422, 503),
    },
)
def get_result(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    format: Annotated[
        FormatName, Query(description="json, txt, srt, vtt, tsv, docx or rttm")
    ] = "json",
    version: Annotated[
        Literal["current", "original"],
        Query(description="current (as edited), or original (the machine's)"),
    ] = "current",
) -> Response:
    fmt: str = format
    task = _task(services, owner, task_id)
    if task.status != TaskStatus.completed or not task.result_key:
        raise ConflictError(f"task {task_id} is {task.status.value}; no result yet")
    return transcripts.download(task, transcripts.document(services, task, version), fmt)


@router.get(
    "/tasks/{task_id}/media",
    response_class=Response,
    responses={
        200: {**content("*/*"), "description": "The whole media"},
        206: {**content("*/*"), "description": "The range asked for"},
        **responses_for(401, 404, 416, 503),
    },
)
def get_media(
    request: Request,
    task_id: str,
    services: ServicesDep,
    owner: MediaOwner,
) -> Response:
    """The uploaded media, with byte ranges, so that the player can seek without it all."""
    task = _task(services, owner, task_id)
    kind = mimetypes.guess_type(task.filename)[0] or "application/octet-stream"
    # with If-Range the client wants a range only if the media is unchanged; we send no
    # validator to compare with, so it gets the whole media
    wanted = None if "if-range" in request.headers else request.headers.get("range")
    try:
        return ranged_response(services.store, task.input_key, kind, wanted)
    except FileMissingError:
        raise NotFoundError(f"the media of task {task_id} was removed") from None


@router.delete(
    "/tasks/{task_id}",
    response_model=None,
    responses={
        200: {"model": TaskPublic, "description": "A queued or running task, now cancelled"},
        204: {"description": "A finished task, now deleted"},
        **responses_for(401, 404, 503),
    },
)
def delete_task(task_id: str, services: ServicesDep, owner: CurrentOwner) -> Response:
    task = _task(services, owner, task_id)
    if task.status not in TERMINAL_STATUSES:
        cancel(services, task)
        return JSONResponse(_view(services, _task(services, owner, task_id)))
    # The files first: where the store cannot be reached (503), the task is still there
    # for the client's retry, and no file is left without a task pointing at it.
    services.store.delete_prefix(task_id)
    services.jobs.delete(task_id)
    services.events.publish(TaskEvent(task_id, owner, "deleted", {"id": task_id}))
    return Response(status_code=204)


@router.post(
    "/tasks/{task_id}/cancel",
    response_model=TaskPublic,
    responses=responses_for(401, 404, 409, 503),
)
def cancel_task(task_id: str, services: ServicesDep, owner: CurrentOwner) -> dict[str, Any]:
    """Stop a queued or running task and keep its media, so that it can be retried
    (`DELETE` cancels and removes the media)."""
    task = _task(services, owner, task_id)
    if task.status in TERMINAL_STATUSES:
        raise ConflictError(f"task {task_id} is {task.status.value}; only a queued or"
                            " running task can be cancelled")  # fmt: skip
    cancel(services, task, keep_input=True)
    return _view(services, _task(services, owner, task_id))


@router.post(
    "/tasks/{task_id}/retry",
    status_code=202,
    response_model=TaskPublic,
    responses=responses_for(400, 401, 404, 409, 422, 503),
)
def retry_task(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    change: Annotated[TaskRetry | None, Body(description="Options to change")] = None,
) -> dict[str, Any]:
    """Queue a failed or cancelled task again, with changed options when given."""
    task = _task(services, owner, task_id)
    fetched_again = bool(task.options.get("source_url"))  # the worker downloads it anew
    if task.status not in (TaskStatus.failed, TaskStatus.cancelled):
        raise ConflictError(
            f"task {task_id} is {task.status.value}; only failed or cancelled tasks retry"
        )
    if not fetched_again and not services.store.exists(task.input_key):
        raise ConflictError(f"task {task_id} has no input any more; upload the file again")
    options = retried_options(services, task.options, change) if change else None
    if not services.jobs.retry(task_id, options):
        raise ConflictError(
            f"task {task_id} is {task.status.value}; only failed or cancelled tasks retry"
        )
    services.queue.notify(task_id)
    return _view(services, _task(services, owner, task_id))
