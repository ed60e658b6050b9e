"""AssemblyAI's `/v2` API, for clients written against the hosted service.

Point AssemblyAI's SDK (`aai.settings.base_url`) or plain HTTP code, such as a Lambda
that posts S3 presigned URLs, at this service and it works unchanged: upload, create
a transcript with speaker labels and a webhook, poll it, export captions, sentences
and paragraphs, search words, list and delete. Underneath, each transcript is an
ordinary task (same limits, queue, recovery and task list). Features this service
does not have (summaries, PII redaction, …) are refused by name rather than ignored.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from transcriber.api import assemblyai as aai
from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.routes.export import without_speakers
from transcriber.api.schemas import (
    AaiParagraphs,
    AaiSentences,
    AaiTranscript,
    AaiTranscriptList,
    AaiWordSearch,
    UploadUrl,
    content,
    responses_for,
)
from transcriber.api.services import Services
from transcriber.api.submit import cancel, check_room, submit_url, transcript_of
from transcriber.api.uploads import UploadRoute, upload_limit, upload_route
from transcriber.domain import MAX_CLIP_S, ChannelMode, Transcript
from transcriber.errors import (
    ConflictError,
    EmptyFileError,
    FetchError,
    FileMissingError,
    InputError,
    NotFoundError,
    OptionError,
)
from transcriber.formats import srt, vtt
from transcriber.jobs.codec import options_to_dict
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TERMINAL_STATUSES, TaskStatus
from transcriber.jobs.webhooks import make_webhook
from transcriber.options import MAX_PROMPT_CHARS, request_options
from transcriber.profanity import censor

router = APIRouter(prefix="/v2", tags=["AssemblyAI-compatible"], route_class=UploadRoute)

CLIP_MS = int(MAX_CLIP_S * 1000)
"""The latest a clip may start or end, in milliseconds (a week: longer is a typo)."""
UPLOAD_TTL_S = 24 * 3600.0
UPLOAD_SWEEP_S = 600.0
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
UPLOAD_PATH = re.compile(r"/v2/upload/([0-9a-f]{32})$")
LIST_STATUS = {
    "queued": TaskStatus.queued,
    "processing": TaskStatus.processing,
    "completed": TaskStatus.completed,
    "error": TaskStatus.failed,
}


class SpeakerOptions(BaseModel):
    min_speakers_expected: int | None = Field(None, ge=1, le=32)
    max_speakers_expected: int | None = Field(None, ge=1, le=32)


MAX_SPELLING_RULES = 1000
MAX_SPELLING_CHARS = 20_000
"""All of `custom_spelling`'s text together (every `from` and `to`): room for a thousand
names and terms, and little enough that applying the rules on each read of a transcript,
and showing them in the task list, stays cheap. AssemblyAI documents no limit."""


class Spelling(BaseModel):
    """One rule of `custom_spelling`: each spelling in `from` is written as `to`."""

    model_config = ConfigDict(populate_by_name=True)

    spellings: list[Annotated[str, Field(max_length=200)]] = Field(
        alias="from", min_length=1, max_length=100
    )
    to: str = Field(max_length=200)


class TranscriptRequest(BaseModel):
    """The fields this service acts on; any other field set to a true value is refused."""

    model_config = ConfigDict(
        extra="allow",
        # AssemblyAI's other features may be sent turned off, never on.
        json_schema_extra={"additionalProperties": {"enum": [False, None, "", 0, [], {}]}},
    )

    audio_url: str = Field(max_length=8192)
    language_code: str | None = None
    language_detection: bool | None = None
    speaker_labels: bool | None = None
    speakers_expected: int | None = Field(None, ge=1, le=32)
    speaker_options: SpeakerOptions | None = None
    multichannel: bool | None = None
    dual_channel: bool | None = None
    webhook_url: str | None = Field(None, max_length=2048)
    webhook_auth_header_name: str | None = Field(None, max_length=256)
    webhook_auth_header_value: str | None = Field(None, max_length=4096)
    prompt: str | None = None
    word_boost: list[str] | None = None
    keyterms_prompt: list[str] | None = None
    boost_param: str | None = None
    speech_model: str | None = None
    speech_models: list[str] | None = None
    punctuate: bool | None = None
    format_text: bool | None = None
    audio_channels: int | None = None
    language_confidence_threshold: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    speech_threshold: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    custom_spelling: list[Spelling] | None = Field(None, max_length=MAX_SPELLING_RULES)
    filter_profanity: bool | None = None
    audio_start_from: int | None = Field(None, ge=0, le=CLIP_MS)  # milliseconds
    audio_end_at: int | None = Field(None, ge=0, le=CLIP_MS)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _upload_key(owner: str, upload_id: str) -> str:
    return f"uploads/{owner or '_open'}/{upload_id}"


def _language(body: TranscriptRequest) -> str:
    """AssemblyAI's codes (`en_us`, `ru`) → Whisper's; no code at all detects."""
    if body.language_detection or not body.language_code:
        return "auto"
    return body.language_code.strip().lower().replace("-", "_").split("_")[0]


def _prompt(body: TranscriptRequest) -> str | None:
    if body.prompt:
        return body.prompt
    terms = [*(body.word_boost or ()), *(body.keyterms_prompt or ())]
    joined = ", ".join(t.strip() for t in terms if t.strip())
    if len(joined) > MAX_PROMPT_CHARS:  # named by its fields, not as a `prompt` never sent
        raise OptionError(
            f"word_boost and keyterms_prompt make a prompt of {len(joined)} characters;"
            f" at most {MAX_PROMPT_CHARS} (Whisper reads only its last 223 tokens)"
        )
    return joined or None


def _refuse_unoffered(body: TranscriptRequest) -> None:
    # Off is None, false, "", 0, [] or {} (`"topics": []`, as AssemblyAI's own examples send).
    asked = sorted(k for k, v in (body.model_extra or {}).items() if v)
    if asked:
        raise OptionError(
            f"this service does not offer {', '.join(asked)}; it transcribes with timestamps,"
            " speaker labels and channels (see docs/api.md, AssemblyAI-compatible API)"
        )
    if body.punctuate is False or body.format_text is False:
        raise OptionError("punctuate and format_text cannot be turned off here")


def _check_spelling(rules: list[Spelling]) -> None:
    for i, rule in enumerate(rules):
        # An empty spelling matches nothing, and an empty `to` would delete words:
        # AssemblyAI's `to` is one word.
        for j, spelling in enumerate(rule.spellings):
            if not spelling.strip():
                raise OptionError(f"custom_spelling[{i}].from[{j}] is empty: give a word or phrase")
        if not rule.to.strip():
            raise OptionError(f"custom_spelling[{i}].to is empty: give the spelling to write")
    chars = sum(len(r.to) + sum(map(len, r.spellings)) for r in rules)
    if chars > MAX_SPELLING_CHARS:
        raise OptionError(
            f"custom_spelling holds {chars} characters in all (every from and to);"
            f" at most {MAX_SPELLING_CHARS}"
        )


def _task(services: Services, owner: str, transcript_id: str) -> TaskRecord:
    task = services.jobs.get(transcript_id, owner=owner)
    if task is None:
        raise NotFoundError(f"transcript {transcript_id} not found")
    return task


def _transcript(services: Services, task: TaskRecord) -> Transcript | None:
    if task.status != TaskStatus.completed or not task.result_key:
        return None
    asked = task.options.get("assemblyai") or {}
    spelled = aai.respell(transcript_of(services, task), asked.get("custom_spelling") or ())
    # After the spelling rules, so that none of them can bring a masked word back.
    return censor(spelled) if asked.get("filter_profanity") else spelled


def _completed(services: Services, owner: str, transcript_id: str) -> Transcript:
    task = _task(services, owner, transcript_id)
    transcript = _transcript(services, task)
    if transcript is None:
        status = aai.STATUS[task.status]
        raise ConflictError(f"transcript {transcript_id} is {status}, not completed")
    return transcript


def _body(request: Request, services: Services, task: TaskRecord) -> dict[str, Any]:
    model = str(task.options.get("model") or services.settings.model)
    return aai.transcript_body(task, _transcript(services, task), _base(request), model)


NOT_RAW = (
    "the request body must be the file's raw bytes, not a multipart form:"
    " send it as `curl --data-binary @a.wav`, not `curl -F file=@a.wav`"
)
MULTIPART_START = re.compile(rb"--[ -~]{1,70}\r\ncontent-", re.IGNORECASE)
"""A multipart form's first boundary line and part header (RFC 2046), which no media
file begins with: a form sent without its Content-Type."""


def _raw_media(path: Path) -> None:
    """Refuse an upload that holds no bytes, or a form's envelope rather than the file."""
    with path.open("rb") as f:
        head = f.read(128)
    if not head:
        raise EmptyFileError("the upload is empty: the request body holds no bytes")
    if MULTIPART_START.match(head):
        raise InputError(NOT_RAW)


@router.post(
    "/upload",
    response_model=UploadUrl,
    responses=responses_for(400, 401, 408, 413, 415, 429, 503, 507, aai=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
@upload_route(raw=True)
async def upload(request: Request, services: ServicesDep, owner: CurrentOwner) -> dict[str, str]:
    """The request body is the file; the answer's `upload_url` goes in `audio_url`."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise InputError(NOT_RAW)  # before any of the body is read
    limit = upload_limit(services.settings)
    now = time.monotonic()
    if now - getattr(request.app.state, "uploads_swept", -UPLOAD_SWEEP_S) >= UPLOAD_SWEEP_S:
        request.app.state.uploads_swept = now  # uploads expire, used or not
        await asyncio.to_thread(services.store.delete_older, "uploads", UPLOAD_TTL_S)
    upload_id = uuid.uuid4().hex
    key = _upload_key(owner, upload_id)
    await services.store.put_stream(key, request.stream(), limit, check=_raw_media)
    return {"upload_url": f"{_base(request)}/v2/upload/{upload_id}"}


@router.post(
    "/transcript",
    response_model=AaiTranscript,
    responses=responses_for(400, 401, 429, 503, aai=True),
)
async def create_transcript(
    request: Request, services: ServicesDep, owner: CurrentOwner, body: TranscriptRequest
) -> dict[str, Any]:
    _refuse_unoffered(body)
    _check_spelling(body.custom_spelling or [])
    s = services.settings
    speakers = body.speaker_options or SpeakerOptions.model_validate({})
    options = request_options(
        s,
        language=_language(body),
        word_timestamps=True,
        channels=ChannelMode.split if body.multichannel or body.dual_channel else ChannelMode.mix,
        diarize=bool(body.speaker_labels),
        speakers=body.speakers_expected if body.speaker_labels else None,
        min_speakers=speakers.min_speakers_expected if body.speaker_labels else None,
        max_speakers=speakers.max_speakers_expected if body.speaker_labels else None,
        initial_prompt=_prompt(body),
        start=None if body.audio_start_from is None else body.audio_start_from / 1000,
        end=None if body.audio_end_at is None else body.audio_end_at / 1000,
        min_language_probability=body.language_confidence_threshold,
        min_speech_fraction=body.speech_threshold,
        model_paths=False,
    )
    hook = await asyncio.to_thread(
        make_webhook,
        body.webhook_url,
        s.allow_private_urls,
        body.webhook_auth_header_name,
        body.webhook_auth_header_value,
        dialect="assemblyai",
    )
    spelling = [{"from": r.spellings, "to": r.to} for r in body.custom_spelling or ()]
    echo = {"audio_url": body.audio_url, "language_code": body.language_code,
            "speech_model": body.speech_model, "custom_spelling": spelling or None,
            "filter_profanity": bool(body.filter_profanity),
            "audio_start_from": body.audio_start_from,
            "audio_end_at": body.audio_end_at}  # fmt: skip
    extra = {"webhook": hook.to_dict() if hook else None, "assemblyai": echo}
    # As AssemblyAI does, the answer comes at once, queued; media that cannot be used
    # makes the transcript fail with the reason, which the client sees when it polls.
    where = urlsplit(body.audio_url)
    ours = UPLOAD_PATH.search(where.path)
    if not ours and where.netloc == request.url.netloc and "/v2/upload/" in where.path:
        # An upload URL of this server with an id it never gives (cut short, upper case):
        # named as such, not refused as a private address or fetched from ourselves.
        raise FetchError(f"{body.audio_url}: no such upload for this API key")
    if not ours:
        task = await submit_url(services, owner, body.audio_url, options, extra)
        return await asyncio.to_thread(_body, request, services, task)
    key = _upload_key(owner, ours.group(1))
    await asyncio.to_thread(check_room, services, owner)
    task_id = str(uuid.uuid4())
    # As on AssemblyAI, an upload may be transcribed any number of times until it
    # expires: each transcript gets its own link to (or copy of) it.
    try:
        await asyncio.to_thread(services.store.copy, key, f"{task_id}/input")
    except FileMissingError:
        raise FetchError(
            f"{body.audio_url}: no such upload for this API key"
            f" (uploads are kept for {UPLOAD_TTL_S / 3600:.0f} hours)"
        ) from None
    stored = options_to_dict(options) | extra
    task = await asyncio.to_thread(
        services.jobs.create, owner, "upload", f"{task_id}/input", stored, None, task_id=task_id
    )
    await asyncio.to_thread(services.queue.notify, task.id)
    return await asyncio.to_thread(_body, request, services, task)


@router.get(
    "/transcript/{transcript_id}",
    response_model=AaiTranscript,
    responses=responses_for(401, 404, 503, aai=True),
)
def get_transcript(
    request: Request, transcript_id: str, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    return _body(request, services, _task(services, owner, transcript_id))


@router.delete(
    "/transcript/{transcript_id}",
    response_model=AaiTranscript,
    responses=responses_for(401, 404, 503, aai=True),
)
def delete_transcript(
    request: Request, transcript_id: str, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    """Stops the transcript if it is running and deletes its media and text for good."""
    task = _task(services, owner, transcript_id)
    if task.status not in TERMINAL_STATUSES:
        cancel(services, task)
        task = _task(services, owner, transcript_id)
    body = aai.transcript_body(task, None, _base(request), str(task.options.get("model")))
    services.store.delete_prefix(task.id)  # first: a 503 here leaves the task to retry
    services.jobs.delete(task.id)
    services.events.publish(TaskEvent(task.id, owner, "deleted", {"id": task.id}))
    return body | {"text": "Deleted by user.", "words": [], "audio_url": "http://deleted_by_user"}


@router.get(
    "/transcript",
    response_model=AaiTranscriptList,
    responses=responses_for(400, 401, 404, 503, aai=True),
)
def list_transcripts(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
    status: Annotated[Literal["queued", "processing", "completed", "error"] | None, Query()] = None,
    before_id: str | None = None,
    after_id: str | None = None,
    created_on: Annotated[
        # The pattern is the schema's; the route checks the day itself, with a message
        # that names the form (pydantic's would quote the regular expression).
        str | None,
        Query(
            description="A day, YYYY-MM-DD (UTC)",
            json_schema_extra={"pattern": f"^{DAY.pattern}$"},
        ),
    ] = None,
) -> dict[str, Any]:
    before = _task(services, owner, before_id).created_at if before_id else None
    after = _task(services, owner, after_id).created_at if after_id else None
    day_start = day_end = None  # the bounds of `created_on`, which every page keeps
    if created_on is not None:  # "" too: no day is not all days
        try:
            if not DAY.fullmatch(created_on):  # fromisoformat takes 20261207 and weeks too
                raise ValueError(created_on)
            day = datetime.combine(date.fromisoformat(created_on), clock(), tzinfo=UTC)
        except ValueError:
            raise OptionError(f"created_on {created_on!r} is not a day (YYYY-MM-DD)") from None
        try:
            day_start = day - timedelta(microseconds=1)
            day_end = day_start + timedelta(days=1, microseconds=1)
        except OverflowError:  # the first or the last day a datetime can hold
            raise OptionError(
                f"created_on {created_on} is out of range; give a day from 0001-01-02 to 9999-12-30"
            ) from None
        after = max(after, day_start) if after else day_start
        before = min(before, day_end) if before else day_end
    wanted = LIST_STATUS[status] if status else None
    if after_id and not before_id:
        # The page just after `after_id`: the oldest of the newer ones (on `created_on`'s
        # day, if given), shown newest first.
        bounds = {"created_after": after, "created_before": before}
        _, total = services.jobs.list_tasks(owner, wanted, 1, 0, **bounds)
        items, _ = services.jobs.list_tasks(owner, wanted, limit, max(0, total - limit), **bounds)
    else:
        items, _ = services.jobs.list_tasks(
            owner, wanted, limit, 0, created_before=before, created_after=after
        )
    base = _base(request)
    query = {k: v for k, v in request.query_params.items()}
    page: dict[str, Any] = {
        "limit": limit,
        "result_count": len(items),
        "current_url": f"{base}/v2/transcript?{urlencode(query)}",
        "prev_url": None,
        "next_url": None,
    }
    if items:
        # The other pages keep every filter; only the page's bound changes.
        filters = {"limit": limit, "status": status, "created_on": created_on}
        common = {k: v for k, v in filters.items() if v is not None}
        jobs = services.jobs
        older = items[-1].created_at
        if jobs.list_tasks(owner, wanted, 1, 0, created_before=older, created_after=day_start)[0]:
            page["prev_url"] = (
                f"{base}/v2/transcript?{urlencode(common | {'before_id': items[-1].id})}"
            )
        newer = items[0].created_at
        if jobs.list_tasks(owner, wanted, 1, 0, created_after=newer, created_before=day_end)[0]:
            page["next_url"] = (
                f"{base}/v2/transcript?{urlencode(common | {'after_id': items[0].id})}"
            )
    return {"page_details": page, "transcripts": [aai.list_item(t, base) for t in items]}


Chars = Annotated[int | None, Query(ge=1, le=1000, description="Longest caption line")]


@router.get(
    "/transcript/{transcript_id}/sentences",
    response_model=AaiSentences,
    responses=responses_for(401, 404, 409, 503, aai=True),
)
def get_sentences(transcript_id: str, services: ServicesDep, owner: CurrentOwner) -> dict[str, Any]:
    t = _completed(services, owner, transcript_id)
    return aai.spans_body("sentences", aai.sentences(aai.words(t)), t, t.model)


@router.get(
    "/transcript/{transcript_id}/paragraphs",
    response_model=AaiParagraphs,
    responses=responses_for(401, 404, 409, 503, aai=True),
)
def get_paragraphs(
    transcript_id: str, services: ServicesDep, owner: CurrentOwner
) -> dict[str, Any]:
    t = _completed(services, owner, transcript_id)
    return aai.spans_body("paragraphs", aai.paragraphs(aai.words(t)), t, t.model)


@router.get(
    "/transcript/{transcript_id}/word-search",
    response_model=AaiWordSearch,
    responses=responses_for(400, 401, 404, 409, 503, aai=True),
)
def word_search(
    transcript_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    words: Annotated[
        str,
        Query(
            description="Comma-separated words or phrases", json_schema_extra={"pattern": r"[^,\s]"}
        ),  # checked below, in words
    ],
) -> dict[str, Any]:
    terms = [w for w in words.split(",") if w.strip()]
    if not terms:
        raise OptionError("words: give at least one word to search for")
    t = _completed(services, owner, transcript_id)
    return aai.word_search(transcript_id, aai.words(t), terms)


def _captions(
    kind: Literal["srt", "vtt"],
    services: Services,
    owner: str,
    transcript_id: str,
    chars_per_caption: int | None,
) -> PlainTextResponse:
    writer, media_type = {"srt": (srt.render, "text/plain"), "vtt": (vtt.render, "text/vtt")}[kind]
    # AssemblyAI's caption exports name no speakers (they are in `utterances`).
    t = without_speakers(_completed(services, owner, transcript_id))
    body = writer(t, chars_per_caption) if chars_per_caption else writer(t)
    return PlainTextResponse(body.decode(), media_type=media_type)


# Two routes, not one with a {kind}: any other path is an unknown one (404), as AssemblyAI has it.
@router.get(
    "/transcript/{transcript_id}/srt",
    response_class=Response,
    responses={200: content("text/plain"), **responses_for(400, 401, 404, 409, 503, aai=True)},
)
def export_srt(
    transcript_id: str, services: ServicesDep, owner: CurrentOwner, chars_per_caption: Chars = None
) -> PlainTextResponse:
    """SubRip captions; `chars_per_caption` sets the longest line."""
    return _captions("srt", services, owner, transcript_id, chars_per_caption)


@router.get(
    "/transcript/{transcript_id}/vtt",
    response_class=Response,
    responses={200: content("text/vtt"), **responses_for(400, 401, 404, 409, 503, aai=True)},
)
def export_vtt(
    transcript_id: str, services: ServicesDep, owner: CurrentOwner, chars_per_caption: Chars = None
) -> PlainTextResponse:
    """WebVTT captions; `chars_per_caption` sets the longest line."""
    return _captions("vtt", services, owner, transcript_id, chars_per_caption)
