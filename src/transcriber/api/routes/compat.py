"""Drop-in endpoints: clients written for OpenAI's audio API or whisper-asr-webservice.

Both wait for the transcript and answer with it, as those services do. Underneath,
each request is an ordinary task (same limits, queue, persistence and task list);
a client that hangs up cancels it. Errors keep this service's one shape,
`{"error": {"code", "message"}}`, which OpenAI clients read as they read OpenAI's.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from openai.types.audio import (
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)

from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.openai_stream import STREAM_FORMATS, diarized_json, transcript_events
from transcriber.api.routes.export import content_disposition
from transcriber.api.schemas import DetectedLanguage, ModelList, ModelPublic, content, responses_for
from transcriber.api.services import Services
from transcriber.api.submit import finished, require_worker, submit
from transcriber.api.uploads import UploadRoute, staged_path, upload_route
from transcriber.domain import Transcript
from transcriber.errors import NotFoundError, OptionError, TranscriptionFailedError, naming
from transcriber.formats import FORMATS, render
from transcriber.languages import language_name
from transcriber.models.packs import PACKS
from transcriber.options import request_options

router = APIRouter(tags=["compatible"], route_class=UploadRoute)

# OpenAI's model names mean "the service's default model" here.
OPENAI_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
)
OPENAI_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
TRANSLATION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
ASR_OUTPUTS = ("txt", "vtt", "srt", "tsv", "json")
# Language detection reads until the first speech, but no further than this: a long
# silent file (or one whose header hides its length) must not hold the endpoint.
DETECT_SCAN_S = 600.0


def _model_ids(services: Services) -> list[str]:
    names = [n for n, pack in PACKS.items() if pack.installed()]
    default = services.settings.model
    if default not in names:
        names.insert(0, default)
    return [*names, *OPENAI_MODELS]


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "video-transcriber"}


@router.get("/v1/models", response_model=ModelList, responses=responses_for(401, 503))
def openai_models(services: ServicesDep, _: CurrentOwner) -> dict[str, Any]:
    return {"object": "list", "data": [_model(n) for n in _model_ids(services)]}


@router.get(
    "/v1/models/{model_id:path}", response_model=ModelPublic, responses=responses_for(401, 404, 503)
)
def openai_model(model_id: str, services: ServicesDep, _: CurrentOwner) -> dict[str, Any]:
    """One model, as OpenAI's `models.retrieve` reads it; 404 for one not served here."""
    if model_id not in _model_ids(services):
        raise NotFoundError(f"model {model_id!r} is not served here; see GET /v1/models")
    return _model(model_id)


@router.post(
    "/v1/audio/transcriptions",
    response_model=Transcription | TranscriptionVerbose | TranscriptionDiarized,
    responses={
        200: content("text/plain", "text/vtt", "application/x-subrip", "text/event-stream"),
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503),
    },
)
async def openai_transcriptions(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    file: Annotated[UploadFile, File(description="Video or audio file")],
    model: Annotated[str, Form(description="whisper-1 (default model) or a name")] = "whisper-1",
    language: Annotated[str | None, Form(description="ISO 639-1 code; empty detects")] = None,
    prompt: Annotated[str | None, Form(description="Text to steer spelling and style")] = None,
    response_format: Annotated[str, Form(description=", ".join(OPENAI_FORMATS))] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0, description="Accepted; 0 is used")] = 0.0,
    granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]", description="word, segment")
    ] = None,
    stream: Annotated[bool, Form(description="Server-sent events as text is transcribed")] = False,
    chunking_strategy: Annotated[str | None, Form(description="Accepted; VAD is used")] = None,
) -> Response:
    fmt = response_format.lower()
    if fmt not in OPENAI_FORMATS:
        raise OptionError(f"response_format {response_format!r}; use {', '.join(OPENAI_FORMATS)}")
    wanted = {g.lower() for g in granularities or ()}
    if wanted - {"word", "segment"}:
        raise OptionError("timestamp_granularities[] takes word and segment")
    if stream and fmt not in STREAM_FORMATS:
        raise OptionError(f"stream=true works with response_format {', '.join(STREAM_FORMATS)}")
    require_worker(services)
    options = request_options(
        services.settings,
        language=language or "auto",
        model=None if model in OPENAI_MODELS else model,
        word_timestamps="word" in wanted,
        diarize=fmt == "diarized_json",
        initial_prompt=prompt,
        model_paths=False,
    )
    task = await submit(services, owner, file, options, {})
    if stream:
        events = transcript_events(request, services, task, fmt)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})  # fmt: skip
    transcript = await finished(request, services, task)
    return await asyncio.to_thread(_openai_answer, transcript, fmt, "word" in wanted)


@router.post(
    "/v1/audio/translations",
    response_model=Translation | TranslationVerbose,
    responses={
        200: content("text/plain", "text/vtt", "application/x-subrip"),
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503),
    },
)
async def openai_translations(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    file: Annotated[UploadFile, File(description="Video or audio file")],
    model: Annotated[str, Form(description="whisper-1 (default model) or a name")] = "whisper-1",
    prompt: Annotated[str | None, Form(description="Text to steer style, in English")] = None,
    response_format: Annotated[str, Form(description=", ".join(TRANSLATION_FORMATS))] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0, description="Accepted; 0 is used")] = 0.0,
) -> Response:
    """English text of speech in any language, as OpenAI's translations endpoint gives it."""
    fmt = response_format.lower()
    if fmt not in TRANSLATION_FORMATS:
        raise OptionError(
            f"response_format {response_format!r}; use {', '.join(TRANSLATION_FORMATS)}"
        )
    require_worker(services)
    options = request_options(
        services.settings,
        model=None if model in OPENAI_MODELS else model,
        initial_prompt=prompt,
        task="translate",
        model_paths=False,
    )
    task = await submit(services, owner, file, options, {})
    transcript = await finished(request, services, task)
    return await asyncio.to_thread(_openai_answer, transcript, fmt, False)


def _openai_answer(transcript: Transcript, fmt: str, words: bool) -> Response:
    if fmt == "diarized_json":
        return JSONResponse(diarized_json(transcript))
    if fmt == "json":
        return JSONResponse({"text": transcript.text})
    if fmt == "text":
        return PlainTextResponse(transcript.text + "\n")
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(transcript, words=words))
    return Response(render(transcript, fmt), media_type=FORMATS[fmt].content_type)


def compression_ratio(text: str) -> float:
    """How well the text compresses, as Whisper measures it (repetition scores high)."""
    raw = text.encode()
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def verbose_json(t: Transcript, words: bool) -> dict[str, Any]:
    """OpenAI's `verbose_json`: the language is a code here (`ru`), not a name, and ""
    when none was detected (no speech); a translation's is `english`, as OpenAI gives it."""
    translated = t.task == "translate"
    body: dict[str, Any] = {
        "task": t.task,
        # OpenAI's schema has a language always; audio with no speech has none detected.
        "language": "english" if translated else (t.language or ""),
        "duration": t.duration,
        "text": t.text,
        "segments": [
            {
                "id": s.id - 1,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": s.avg_logprob or 0.0,
                "compression_ratio": compression_ratio(s.text),
                "no_speech_prob": s.no_speech_prob or 0.0,
                "speaker": s.speaker,
            }
            for s in t.segments
        ],
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in t.segments
            for w in s.words
        ]
    return body


@router.post(
    "/asr",
    response_class=Response,
    responses={
        200: content(*(FORMATS[f].content_type for f in ASR_OUTPUTS)),
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503),
    },
)
async def asr_webservice(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    audio_file: Annotated[UploadFile, File(description="Video or audio file")],
    task: Annotated[str, Query(description="transcribe, or translate (to English)")] = "transcribe",
    language: Annotated[str | None, Query(description="ISO 639-1 code; empty detects")] = None,
    initial_prompt: Annotated[str | None, Query()] = None,
    encode: Annotated[bool, Query(description="Accepted; media is always decoded")] = True,
    output: Annotated[str, Query(description=", ".join(ASR_OUTPUTS))] = "txt",
    word_timestamps: Annotated[bool, Query()] = False,
    vad_filter: Annotated[bool, Query()] = True,
    diarize: Annotated[bool, Query()] = False,
    min_speakers: Annotated[int | None, Query(ge=1, le=32)] = None,
    max_speakers: Annotated[int | None, Query(ge=1, le=32)] = None,
) -> Response:
    fmt = output.lower()
    if fmt not in ASR_OUTPUTS:
        raise OptionError(f"output {output!r}; use {', '.join(ASR_OUTPUTS)}")
    require_worker(services)
    options = request_options(
        services.settings,
        language=language or "auto",
        word_timestamps=word_timestamps,
        vad=vad_filter,
        diarize=diarize,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        initial_prompt=initial_prompt,
        task=task,
        model_paths=False,
    )
    queued = await submit(services, owner, audio_file, options, {})
    transcript = await finished(request, services, queued)
    stem = queued.filename.rsplit(".", 1)[0] or "transcript"
    spec = FORMATS[fmt]
    headers = {
        "Content-Disposition": content_disposition(f"{stem}.{spec.extension}"),
        "Asr-Engine": "video-transcriber",
    }
    body = await asyncio.to_thread(render, transcript, fmt)
    return Response(body, media_type=spec.content_type, headers=headers)


# One detection at a time: each is a second of the model's time, not queued as a task.
_detecting = threading.Lock()


@router.post(
    "/detect-language",
    response_model=DetectedLanguage,
    responses=responses_for(400, 401, 408, 413, 415, 422, 503),
)
@upload_route(queued=False)  # not a task: no queue to wait in
async def asr_detect_language(
    request: Request,
    services: ServicesDep,
    _: CurrentOwner,
    audio_file: Annotated[UploadFile, File(description="Video or audio file")],
    encode: Annotated[bool, Query(description="Accepted; media is always decoded")] = True,
) -> dict[str, Any]:
    """whisper-asr-webservice's language detection: the first 30 s of speech decide."""
    name = audio_file.filename or "upload"
    path = staged_path(audio_file)  # deleted when the request ends

    def detect() -> tuple[str, float] | None:
        with _detecting, naming(path, name):
            return services.pipeline.detect_language(path, max_duration_s=DETECT_SCAN_S)

    found = await asyncio.to_thread(detect)
    if found is None:
        raise TranscriptionFailedError(
            f"{name}: no speech found in its first {DETECT_SCAN_S / 60:.0f} minutes,"
            " so no language to detect"
        )
    code, confidence = found
    return {"detected_language": language_name(code), "language_code": code,
            "confidence": round(confidence, 4)}  # fmt: skip
