"""Downloads as the web page offers them: `GET /api/tasks/{id}/export?format=srt&…`.

The transcript as edited, with the saved speaker names; `speaker_names` (a JSON object
from a label to the name to show, {"A": "Анна"}) names speakers over them for this
download. `speaker_labels=false` leaves who speaks out of captions and text, `max_line`
sets the longest caption line, and `format=verbose_json` gives OpenAI's `/v1`
transcription object with words. Without options this is the same as `/result`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from transcriber.api import transcripts
from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.schemas import content, responses_for
from transcriber.domain import Transcript
from transcriber.edits import with_names
from transcriber.errors import ConflictError, NotFoundError, OptionError
from transcriber.formats import FORMATS, render, srt, vtt
from transcriber.formats.captions import MAX_CHARS
from transcriber.jobs.status import TaskStatus

router = APIRouter(prefix="/api", tags=["tasks"])
MAX_NAME = 100
VERBOSE_JSON = "verbose_json"  # OpenAI's /v1 transcription object, with words
MIN_LINE, MAX_LINE = 10, 200
ExportFormat = Literal["txt", "srt", "vtt", "tsv", "json", "docx", "rttm", "verbose_json"]


def with_verbose_json(answer: dict[str, Any]) -> dict[str, Any]:
    """A 200's content where JSON is the transcript document or, for `verbose_json`,
    OpenAI's transcription object (the `/v1` route puts its schema in the components)."""
    json_kind = answer["content"]["application/json"]
    verbose = {"$ref": "#/components/schemas/TranscriptionVerbose"}
    json_kind["schema"] = {"anyOf": [json_kind["schema"], verbose]}
    return answer


def parse_speaker_names(raw: str | None) -> dict[str, str]:
    """The label → name map from its JSON text; OptionError when it is not one."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise OptionError('speaker_names must be a JSON object, e.g. {"A": "Anna"}') from e
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise OptionError("speaker_names must map speaker labels to names (strings)")
    names = {k: " ".join(v.split())[:MAX_NAME] for k, v in data.items()}
    return {k: v for k, v in names.items() if v}


def rename_speakers(doc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A copy of a result document with every segment and word speaker renamed."""
    if not names:
        return doc

    def one(speaker: Any) -> Any:
        return names.get(speaker, speaker) if isinstance(speaker, str) else speaker

    segments = []
    for seg in doc.get("segments", []):
        words = [w | {"speaker": one(w["speaker"])} if "speaker" in w else w
                 for w in seg.get("words", [])]  # fmt: skip
        segments.append(seg | {"speaker": one(seg.get("speaker")), "words": words})
    out = doc | {"segments": segments}
    if isinstance(doc.get("speakers"), list):
        out["speakers"] = [one(s) if isinstance(s, str) else s for s in doc["speakers"]]
    return out


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Characters no download name keeps: CR and LF would end a header line, and the
others make names that shells and file managers show wrongly."""
FALLBACK_STEM = "transcript"
EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")


def download_stem(filename: str) -> str:
    """The name a download of a task's file takes before its extension: the file's
    name without its extension (`.wav`, `.mp4`: letters and digits) and control
    characters, with no dot or space at either end; `transcript` when that leaves
    no letter or digit (`...`, `.wav`)."""
    clean = CONTROL.sub("", filename)
    stem, dot, extension = clean.rpartition(".")
    if not (dot and EXTENSION.match(extension)):
        stem = clean
    return real_stem(stem)


def real_stem(stem: str) -> str:
    stem = stem.strip(". ")
    return stem if any(c.isalnum() for c in stem) else FALLBACK_STEM


def content_disposition(filename: str, label: str = "") -> str:
    """An attachment header for `STEM{label}.EXT` that survives non-Latin names
    (RFC 6266 / 5987): `filename*` is the name in UTF-8, and `filename` an ASCII
    stand-in for clients that read no other, `transcript{label}.EXT` when the stem has
    nothing ASCII in it (`Брат.srt`). Neither starts with a dot or holds a control
    character, whatever the stem (`...`, `../../etc`)."""
    clean = CONTROL.sub("", filename)
    stem, dot, extension = clean.rpartition(".")
    if not dot:
        stem, extension = clean, ""
    stem = real_stem(stem)
    tail = label + (f".{extension}" if extension else "")
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.-")
    if not re.search(r"[A-Za-z0-9]", ascii_stem):
        ascii_stem = FALLBACK_STEM
    ascii_tail = re.sub(r"[^A-Za-z0-9._-]+", "_", tail)
    return (
        f'attachment; filename="{ascii_stem}{ascii_tail}";'
        f" filename*=UTF-8''{quote(stem + tail, safe='')}"
    )


@router.get(
    "/tasks/{task_id}/export",
    response_class=Response,
    responses={
        200: with_verbose_json(content(*dict.fromkeys(f.content_type for f in FORMATS.values()))),
        **responses_for(401, 404, 409, 422, 503),
    },
)
def export_result(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    format: Annotated[
        ExportFormat,
        Query(description="txt, srt, vtt, tsv, json, docx, rttm, or verbose_json (OpenAI's)"),
    ] = "json",
    speaker_names: Annotated[
        str | None, Query(description='JSON object, e.g. {"A": "Anna"}; over the saved names')
    ] = None,
    speaker_labels: Annotated[
        bool, Query(description="Show who speaks in captions and text (false: text only)")
    ] = True,
    max_line: Annotated[
        int | None, Query(ge=MIN_LINE, le=MAX_LINE, description="Longest caption line (srt, vtt)")
    ] = None,
) -> Response:
    fmt: str = format
    names = parse_speaker_names(speaker_names)
    task = services.jobs.get(task_id, owner=owner)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    if task.status != TaskStatus.completed or not task.result_key:
        raise ConflictError(f"task {task_id} is {task.status.value}; no result yet")
    edited = transcripts.current(services, task)
    shown = with_names(edited.transcript, {**edited.speaker_names, **names})
    if fmt == "rttm":
        transcripts.check_speakers_for_rttm(task, shown)
    if not speaker_labels:
        shown = without_speakers(shown)
    stem = download_stem(task.filename)
    if fmt == VERBOSE_JSON:
        from transcriber.api.routes.compat import verbose_json  # compat imports this module

        body = json.dumps(verbose_json(shown, words=True), ensure_ascii=False).encode()
        headers = {"Content-Disposition": content_disposition(f"{stem}.json")}
        return Response(body, media_type="application/json", headers=headers)
    if fmt == "srt":
        body = srt.render(shown, max_line or MAX_CHARS)
    elif fmt == "vtt":
        body = vtt.render(shown, max_line or MAX_CHARS)
    else:
        body = render(shown, fmt, name=stem)
    spec = FORMATS[fmt]
    headers = {"Content-Disposition": content_disposition(f"{stem}.{spec.extension}")}
    return Response(body, media_type=spec.content_type, headers=headers)


def without_speakers(t: Transcript) -> Transcript:
    """`t` with no speaker on any segment or word: captions and text without names."""
    segments = tuple(
        replace(s, speaker=None, words=tuple(replace(w, speaker=None) for w in s.words))
        for s in t.segments
    )
    return replace(t, segments=segments)
