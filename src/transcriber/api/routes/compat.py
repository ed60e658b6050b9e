"""Drop-in endpoints: clients written for OpenAI's audio API or whisper-asr-webservice.

Both wait for the transcript and answer with it, as those services do. Underneath,
each request is an ordinary task (same limits, queue, persistence and task list). A
client that hangs up cancels it, except on `/asr`, where the task runs on for a
repeat of the request to find (api/reuse.py). Errors under `/v1` have OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}` (api/errors.py); the rest keep this
service's, `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import asyncio
import re
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
from transcriber.api.language_lane import RAW_KEEP_BYTES, detect_language
from transcriber.api.openai_stream import (
    STREAM_FORMATS,
    diarized_json,
    transcript_events,
    word_logprobs,
)
from transcriber.api.received import receive_upload
from transcriber.api.reuse import request_key, reusable
from transcriber.api.routes.export import content_disposition
from transcriber.api.schemas import DetectedLanguage, ModelList, ModelPublic, content, responses_for
from transcriber.api.services import Services
from transcriber.api.submit import check_room, finished, require_worker, submit, submit_staged
from transcriber.api.uploads import UploadRoute, upload_route
from transcriber.domain import Transcript
from transcriber.errors import NotFoundError, OptionError
from transcriber.formats import FORMATS, render
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
ENCODE_DOC = (
    "true: a media file, decoded. false: the body is raw PCM, as whisper-asr-webservice"
    " reads it: 16-bit little-endian, mono, 16 kHz, no header (ffmpeg -f s16le -ac 1 -ar 16000)"
)
VIDEO_FILE_DOC = "The video the audio comes from (Bazarr sends its path): names the task"
NOT_TRANSLATION_DOC = (
    "Not taken by translations, as by OpenAI's: refused with 422 when it asks for anything"
    " (empty or false is accepted)"
)
WHY_NOT = {
    "language": "the spoken language is detected and the text is always English; to"
    " transcribe in a language, use /v1/audio/transcriptions",
    "stream": "the answer comes whole, once translated; leave stream out or false",
    "timestamp_granularities": "a translation has segment times (verbose_json, srt, vtt)"
    " but no word times",
    "include": "a translation has no logprobs",
}


def _model_ids(services: Services) -> list[str]:
    names = [n for n, pack in PACKS.items() if pack.installed()]
    default = services.settings.model
    if default not in names:
        names.insert(0, default)
    return [*names, *OPENAI_MODELS]


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "video-transcriber"}


@router.get("/v1/models", response_model=ModelList, responses=responses_for(401, 503, oai=True))
def openai_models(services: ServicesDep, _: CurrentOwner) -> dict[str, Any]:
    return {"object": "list", "data": [_model(n) for n in _model_ids(services)]}


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelPublic,
    responses=responses_for(401, 404, 503, oai=True),
)
def openai_model(model_id: str, services: ServicesDep, _: CurrentOwner) -> dict[str, Any]:
    """One model, as OpenAI's `models.retrieve` reads it; 404 for one not served here."""
    if model_id not in _model_ids(services):
        raise NotFoundError(
            f"model {model_id!r} is not served here; see GET /v1/models", param="model"
        )
    return _model(model_id)


@router.post(
    "/v1/audio/transcriptions",
    response_model=Transcription | TranscriptionVerbose | TranscriptionDiarized,
    responses={
        200: content("text/plain", "text/vtt", "application/x-subrip", "text/event-stream"),
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503, 507, oai=True),
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
    temperature: Annotated[
        float, Form(ge=0.0, le=1.0, allow_inf_nan=False, description="Accepted; 0 is used")
    ] = 0.0,
    granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]", description="word, segment")
    ] = None,
    stream: Annotated[bool, Form(description="Server-sent events as text is transcribed")] = False,
    chunking_strategy: Annotated[str | None, Form(description="Accepted; VAD is used")] = None,
    include: Annotated[
        list[str] | None,
        Form(alias="include[]", description="logprobs: each word's log-probability (json)"),
    ] = None,
) -> Response:
    fmt = response_format.lower()
    if fmt not in OPENAI_FORMATS:
        raise OptionError(
            f"response_format {response_format!r}; use {', '.join(OPENAI_FORMATS)}",
            param="response_format",
        )
    wanted = {g.lower() for g in granularities or ()}
    if wanted - {"word", "segment"}:
        raise OptionError(
            "timestamp_granularities[] takes word and segment", param="timestamp_granularities"
        )
    if "word" in wanted and fmt != "verbose_json":
        # Only verbose_json has words; OpenAI's reference requires it for granularities.
        # `segment` alone is the default granularity, which every format keeps.
        raise OptionError(
            f"timestamp_granularities[]=word works with response_format verbose_json (the"
            f" one with words), as OpenAI's does, not {fmt}",
            param="timestamp_granularities",
        )
    if stream and fmt not in STREAM_FORMATS:
        raise OptionError(
            f"stream=true works with response_format {', '.join(STREAM_FORMATS)}", param="stream"
        )
    extras = {i.lower() for i in include or ()}
    if extras - {"logprobs"}:
        raise OptionError("include[] takes logprobs", param="include")
    logprobs = "logprobs" in extras
    if logprobs and fmt != "json":
        raise OptionError(
            "include[]=logprobs works with response_format json, as OpenAI's does",
            param="include",
        )
    require_worker(services)
    options = request_options(
        services.settings,
        language=language or "auto",
        model=None if model in OPENAI_MODELS else model,
        word_timestamps="word" in wanted or logprobs,  # a word's probability is its logprob
        diarize=fmt == "diarized_json",
        initial_prompt=prompt,
        model_paths=False,
    )
    task = await submit(services, owner, file, options, {})
    if stream:
        events = transcript_events(request, services, task, fmt, logprobs)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})  # fmt: skip
    transcript = await finished(request, services, task)
    if logprobs:
        return JSONResponse({"text": transcript.text, "logprobs": word_logprobs(transcript)})
    return await asyncio.to_thread(_openai_answer, transcript, fmt, "word" in wanted)


@router.post(
    "/v1/audio/translations",
    response_model=Translation | TranslationVerbose,
    responses={
        200: content("text/plain", "text/vtt", "application/x-subrip"),
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503, 507, oai=True),
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
    temperature: Annotated[
        float, Form(ge=0.0, le=1.0, allow_inf_nan=False, description="Accepted; 0 is used")
    ] = 0.0,
    language: Annotated[str | None, Form(description=NOT_TRANSLATION_DOC)] = None,
    stream: Annotated[bool, Form(description=NOT_TRANSLATION_DOC)] = False,
    granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]", description=NOT_TRANSLATION_DOC)
    ] = None,
    include: Annotated[
        list[str] | None, Form(alias="include[]", description=NOT_TRANSLATION_DOC)
    ] = None,
) -> Response:
    """English text of speech in any language, as OpenAI's translations endpoint gives it."""
    fmt = response_format.lower()
    if fmt not in TRANSLATION_FORMATS:
        raise OptionError(
            f"response_format {response_format!r}; use {', '.join(TRANSLATION_FORMATS)}",
            param="response_format",
        )
    refuse_transcription_fields(language, stream, granularities, include)
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


def refuse_transcription_fields(
    language: str | None, stream: bool, granularities: list[str] | None, include: list[str] | None
) -> None:
    """OptionError for a field of OpenAI's transcriptions that a translation was sent
    with, asking for something: OpenAI's translations take none of them, and a field
    passed over in silence would leave the client with less than it asked for (no
    event stream, no words, no logprobs; a `language` read as the text's language)."""
    asked = {
        "language": bool(language and language.strip()),
        "stream": stream,
        "timestamp_granularities": any(g.strip() for g in granularities or ()),
        "include": any(i.strip() for i in include or ()),
    }
    for param, given in asked.items():
        if given:
            raise OptionError(
                f"{param} is not a field of /v1/audio/translations (OpenAI's translations"
                f" take file, model, prompt, response_format and temperature): {WHY_NOT[param]}",
                param=param,
            )


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
        **responses_for(400, 401, 408, 413, 415, 422, 429, 503, 507),
    },
)
# A full queue or a spent quota refuses the request before its body only when the key
# has no task a repeat could be answered from; otherwise they are checked once the
# upload is read, and only when it makes a task: a repeat of an earlier request
# (api/reuse.py) is answered even then.
@upload_route(repeatable=True)
async def asr_webservice(
    request: Request,
    services: ServicesDep,
    owner: CurrentOwner,
    audio_file: Annotated[UploadFile, File(description="Video or audio file, or raw PCM")],
    task: Annotated[str, Query(description="transcribe, or translate (to English)")] = "transcribe",
    language: Annotated[str | None, Query(description="ISO 639-1 code; empty detects")] = None,
    initial_prompt: Annotated[str | None, Query()] = None,
    encode: Annotated[bool, Query(description=ENCODE_DOC)] = True,
    output: Annotated[str, Query(description=", ".join(ASR_OUTPUTS))] = "txt",
    word_timestamps: Annotated[bool, Query()] = False,
    vad_filter: Annotated[bool, Query()] = True,
    diarize: Annotated[bool, Query()] = False,
    min_speakers: Annotated[int | None, Query(ge=1, le=32)] = None,
    max_speakers: Annotated[int | None, Query(ge=1, le=32)] = None,
    video_file: Annotated[str | None, Query(description=VIDEO_FILE_DOC)] = None,
) -> Response:
    """whisper-asr-webservice's transcription: the answer is the transcript, once done.

    A client that hangs up does not cancel the task, and the same request made again
    (same bytes, same options) is answered by it, at once when it has finished
    (api/reuse.py).
    """
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
        # whisper-asr-webservice reads the bounds only with diarize=true
        min_speakers=min_speakers if diarize else None,
        max_speakers=max_speakers if diarize else None,
        initial_prompt=initial_prompt,
        task=task,
        model_paths=False,
    )
    name = media_name(audio_file, video_file)
    received = await receive_upload(audio_file, not encode, name)
    try:
        key = request_key(received, options)
        queued = await reusable(services, owner, key)
        if queued is not None:
            services.metrics.reused.inc()
        else:  # a new task: now the queue and the key's quota must have room for it
            await asyncio.to_thread(check_room, services, owner)
            queued = await submit_staged(services, owner, received.path, name, options, {}, key)
    finally:
        await asyncio.to_thread(received.discard)
    transcript = await finished(request, services, queued, cancel_on_hangup=False)
    stem = name.rsplit(".", 1)[0] or "transcript"  # this request's name, even when reused
    spec = FORMATS[fmt]
    headers = {
        "Content-Disposition": content_disposition(f"{stem}.{spec.extension}"),
        "Asr-Engine": "video-transcriber",
    }
    body = await asyncio.to_thread(render, transcript, fmt)
    return Response(body, media_type=spec.content_type, headers=headers)


@router.post(
    "/detect-language",
    response_model=DetectedLanguage,
    response_model_exclude_none=True,
    responses=responses_for(400, 401, 408, 413, 415, 422, 503, 507),
)
@upload_route(queued=False)  # not a task: no queue to wait in (api/language_lane.py)
async def asr_detect_language(
    request: Request,
    services: ServicesDep,
    _: CurrentOwner,
    audio_file: Annotated[UploadFile, File(description="Video or audio file, or raw PCM")],
    encode: Annotated[bool, Query(description=ENCODE_DOC)] = True,
    video_file: Annotated[str | None, Query(description=VIDEO_FILE_DOC)] = None,
) -> dict[str, Any]:
    """whisper-asr-webservice's language detection: the first 30 s of speech decide.
    Not a task, and not behind the queue (api/language_lane.py); `und` when there is
    no speech."""
    name = media_name(audio_file, video_file)
    received = await receive_upload(
        audio_file, not encode, name, keep_bytes=RAW_KEEP_BYTES, hashed=False
    )
    try:
        return await detect_language(services, received.path, name)
    finally:
        await asyncio.to_thread(received.discard)


def media_name(upload: UploadFile, video_file: str | None) -> str:
    """The name a request's media goes by in its task and messages: the file name of
    `video_file` when the client says which video the audio is from (Bazarr sends the
    video's path on its own machine), else the upload's name."""
    base = re.split(r"[\\/]", (video_file or "").strip())[-1]
    return base or upload.filename or "upload"
