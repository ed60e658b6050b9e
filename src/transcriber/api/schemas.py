"""What each route answers, as pydantic models: the OpenAPI document is built from these,
so clients and fuzzers can hold the service to it. `/v1` answers with OpenAI's own
models (`openai.types.audio`); the rest are ours. Every status code a route can give is
declared with the error shape it comes in (`responses_for`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from transcriber.formats import JSON_SCHEMA
from transcriber.jobs.status import TaskStatus


def whole_number(value: Any) -> Any:
    """A JSON integer as JSON Schema has it: 3 or 3.0, never `true` or "3"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(whole_number)]
"""An integer field of a strict JSON body (a model with `strict=True`); with limits,
`Annotated[int, Field(ge=1), BeforeValidator(whole_number)]` keeps them in the schema."""


class ErrorDetail(BaseModel):
    code: str = Field(description="What went wrong, for programs: not_found, too_large, …")
    message: str = Field(description="What went wrong and what to do, for people")


class ErrorBody(BaseModel):
    """Every error of `/api`, `/asr` and the rest (`/v1` has OpenAI's, `/v2` AssemblyAI's)."""

    error: ErrorDetail


class OaiErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and what to do, for people")
    type: str = Field(
        description="OpenAI's kind of error: invalid_request_error, insufficient_quota,"
        " requests (a rate limit), server_error"
    )
    param: str | None = Field(description="The request field the error is about, if one")
    code: str = Field(description="What went wrong, for programs: this service's codes")


class OaiError(BaseModel):
    """An error of `/v1`, as OpenAI words it."""

    error: OaiErrorDetail


class AaiError(BaseModel):
    """An error of `/v2`, as AssemblyAI words it."""

    error: str


class Warning(BaseModel):
    code: str
    message: str
    values: dict[str, Any] = Field(default_factory=dict)


class TaskPublic(BaseModel):
    """A task as `GET /api/tasks/{id}`, the WebSocket and webhooks show it."""

    id: str
    status: TaskStatus
    stage: str | None
    progress: float = Field(ge=0, le=1)
    queue_position: int | None
    eta_seconds: float | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    error: str | None
    error_code: str | None = Field(
        description="The error tree's code of a failed task's reason: not_media, …"
    )
    filename: str
    duration: float | None
    language: str | None
    options: dict[str, Any]
    attempts: int
    processing_time: float | None
    webhook_status: int | None
    warnings: list[Warning]


TranscriptDocument = Annotated[
    dict[str, Any],
    WithJsonSchema({k: v for k, v in JSON_SCHEMA.items() if k != "$schema"}),
]
"""A transcript's JSON document (formats/json_schema.py)."""
SegmentDocument = Annotated[
    dict[str, Any], WithJsonSchema(JSON_SCHEMA["properties"]["segments"]["items"])
]


class TranscriptEditor(BaseModel):
    """A transcript as its editors read it (`GET`/`PATCH /api/tasks/{id}/transcript`)."""

    id: str
    revision: int = Field(ge=0, description="The latest revision; 0 before any edit")
    speaker_names: dict[str, str] = Field(description='Label → name: {"A": "Анна"}')
    edited: list[int] = Field(description="Ids of the segments that differ from the machine's")
    original: dict[str, SegmentDocument] = Field(
        description="The machine's version of each edited segment, by id"
    )
    can_undo: bool
    transcript: TranscriptDocument = Field(description="As edited, speakers under labels")


class Peaks(BaseModel):
    """The media's loudness over time, for a waveform."""

    start: float = Field(description="File seconds of the first peak")
    seconds_per_peak: float = Field(gt=0)
    peaks: list[Annotated[int, Field(ge=0, le=100)]]


class TaskList(BaseModel):
    items: list[TaskPublic]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="database, storage, queue, model: ok or why not")


class ModelPublic(BaseModel):
    """A model as OpenAI's `models.retrieve` reads it."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelPublic]


class DetectedLanguage(BaseModel):
    detected_language: str = Field(description="In English: russian; undetermined for und")
    language_code: str = Field(description="ISO 639-1, or und when there is no speech")
    confidence: float = Field(ge=0, le=1)
    reason: str | None = Field(None, description="Why the language is und (only then)")


class UploadUrl(BaseModel):
    upload_url: str


class WebhookSecret(BaseModel):
    secret: str = Field(description="whsec_ and base64: the key of the HMAC-SHA256 signatures")


class AaiWord(BaseModel):
    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None
    channel: str | None


class AaiSpan(BaseModel):
    """An utterance, a sentence or a paragraph."""

    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None
    channel: str | None
    words: list[AaiWord]


class AaiTranscript(BaseModel):
    """AssemblyAI's transcript object."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: Literal["queued", "processing", "completed", "error"]
    error: str | None
    audio_url: str
    language_code: str | None
    language_detection: bool
    language_confidence: float | None
    speaker_labels: bool
    speakers_expected: int | None
    multichannel: bool
    punctuate: bool
    format_text: bool
    audio_start_from: int | None
    audio_end_at: int | None
    speech_model: str | None
    language_confidence_threshold: float | None
    speech_threshold: float | None
    custom_spelling: list[dict[str, Any]] | None
    filter_profanity: bool
    speech_model_used: str
    webhook_url: str | None
    webhook_auth: bool
    webhook_auth_header_name: str | None
    webhook_status_code: int | None
    audio_duration: int | None
    text: str | None
    words: list[AaiWord] | None
    utterances: list[AaiSpan] | None
    confidence: float | None


class AaiPage(BaseModel):
    limit: int
    result_count: int
    current_url: str
    prev_url: str | None
    next_url: str | None


class AaiListItem(BaseModel):
    id: str
    resource_url: str
    status: Literal["queued", "processing", "completed", "error"]
    created: str
    completed: str | None
    audio_url: str
    error: str | None


class AaiTranscriptList(BaseModel):
    page_details: AaiPage
    transcripts: list[AaiListItem]


class AaiSentences(BaseModel):
    sentences: list[AaiSpan]
    confidence: float
    audio_duration: float
    speech_model_used: str


class AaiParagraphs(BaseModel):
    paragraphs: list[AaiSpan]
    confidence: float
    audio_duration: float
    speech_model_used: str


class AaiMatch(BaseModel):
    text: str
    count: int
    timestamps: list[list[int]]
    indexes: list[int]


class AaiWordSearch(BaseModel):
    id: str
    total_count: int
    matches: list[AaiMatch]


WHY = {
    400: "The request cannot be used: a URL that is refused or fails, a body that is not"
    " a readable form or JSON",
    401: "No API key, or an unknown one",
    404: "No such task (or another key's), model or upload",
    408: "The request body stalled before it was complete",
    409: "The task is not in a state for this (no result yet, or not failed), the"
    " transcript changed since the revision given (edit_conflict), or RTTM was asked of a"
    " transcript without speaker labels",
    413: "The upload or the media's duration is over the limit",
    415: "The upload is not media this service can read",
    416: "The byte range starts past the end of the media",
    422: "An option or field is invalid; the message names it",
    429: "The queue is full, or the key's quota is spent; see Retry-After",
    503: "The database, storage or the workers cannot be reached",
    507: "The server's disk cannot hold the upload (full, or over a quota); try again later",
}


# `/v2` answers 400 where the rest answers 422, as AssemblyAI does (api/errors.py).
AAI_WHY = WHY | {
    400: "The request cannot be used: a field or parameter that is invalid (the message"
    " names it), a body that is not a JSON object, a URL that is refused or fails",
}


def responses_for(
    *codes: int, aai: bool = False, oai: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, for its `responses=`: each in the error shape
    (`aai`: AssemblyAI's, of `/v2`; `oai`: OpenAI's, of `/v1`)."""
    model, why = (AaiError, AAI_WHY) if aai else (OaiError, WHY) if oai else (ErrorBody, WHY)
    return {code: {"model": model, "description": why[code]} for code in codes}


def content(*kinds: str) -> dict[str, Any]:
    """An answer's media types, for a `responses=` entry: JSON is the transcript document
    (formats/json_schema.py), DOCX is bytes, the rest is text."""

    def schema(kind: str) -> dict[str, Any]:
        if kind == "application/json":
            return {k: v for k, v in JSON_SCHEMA.items() if k != "$schema"}
        if kind.startswith("application/vnd.") or kind == "*/*":
            return {"type": "string", "format": "binary"}
        return {"type": "string"}

    return {"content": {kind: {"schema": schema(kind)} for kind in kinds}}


def honest_openapi(app: Any) -> dict[str, Any]:
    """The app's OpenAPI document, with FastAPI's own 422 answer (HTTPValidationError)
    replaced by the error shape the service really sends, where a route did not declare
    its 422 itself: under `/v1`, OpenAI's; under `/v2`, AssemblyAI's, with status 400."""
    if app.openapi_schema:
        return dict(app.openapi_schema)
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)  # fmt: skip
    for path, operations in doc["paths"].items():
        aai = path.startswith("/v2/")
        model, status, why = ("AaiError", "400", AAI_WHY) if aai else ("ErrorBody", "422", WHY)
        if path.startswith("/v1/"):
            model = "OaiError"
        for operation in operations.values():
            answer = operation["responses"].get("422")
            if answer and "HTTPValidationError" in str(answer):
                del operation["responses"]["422"]
                ref = {"$ref": f"#/components/schemas/{model}"}
                body = {"application/json": {"schema": ref}}
                operation["responses"].setdefault(
                    status, {"description": why[int(status)], "content": body}
                )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = doc
    return doc
