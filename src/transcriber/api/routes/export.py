"""Downloads with speakers renamed: `GET /api/tasks/{id}/export?format=srt&speaker_names=…`.

`speaker_names` is a JSON object from a label to the name to show ({"A": "Анна"}); labels it
does not name stay as they are. Without it this is the same as `/result`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.schemas import content, responses_for
from transcriber.errors import ConflictError, NotFoundError, OptionError
from transcriber.formats import FORMATS, FormatName, from_dict, render
from transcriber.jobs.status import TaskStatus

router = APIRouter(prefix="/api", tags=["tasks"])
MAX_NAME = 100


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


def content_disposition(filename: str) -> str:
    """An attachment header that survives non-Latin names (RFC 6266 / 5987)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_.") or "transcript"
    if "." in filename and "." not in ascii_name:
        ascii_name += "." + filename.rsplit(".", 1)[1]
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@router.get(
    "/tasks/{task_id}/export",
    response_class=Response,
    responses={
        200: content(*dict.fromkeys(f.content_type for f in FORMATS.values())),
        **responses_for(401, 404, 409, 422, 503),
    },
)
def export_result(
    task_id: str,
    services: ServicesDep,
    owner: CurrentOwner,
    format: Annotated[
        FormatName, Query(description="txt, srt, vtt, tsv, json, docx or rttm")
    ] = "json",
    speaker_names: Annotated[
        str | None, Query(description='JSON object, e.g. {"A": "Anna"}')
    ] = None,
) -> Response:
    fmt: str = format
    names = parse_speaker_names(speaker_names)
    task = services.jobs.get(task_id, owner=owner)
    if task is None:
        raise NotFoundError(f"task {task_id} not found")
    if task.status != TaskStatus.completed or not task.result_key:
        raise ConflictError(f"task {task_id} is {task.status.value}; no result yet")
    raw = services.store.get_bytes(task.result_key)
    if not names and fmt == "json":
        body = raw
    else:
        doc = rename_speakers(json.loads(raw), names)
        if fmt == "json":
            body = json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n"
        else:
            body = render(from_dict(doc), fmt)
    spec = FORMATS[fmt]
    stem = re.sub(r"[^\w.-]+", "_", task.filename.rsplit(".", 1)[0]) or "transcript"
    headers = {"Content-Disposition": content_disposition(f"{stem}.{spec.extension}")}
    return Response(body, media_type=spec.content_type, headers=headers)
