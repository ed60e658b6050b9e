"""Output formats: one registry, so the CLI, the API and the worker offer exactly the same set.

Every writer is a pure function `Transcript -> bytes`; encoding (UTF-8, no BOM) is decided
here once rather than by each caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from transcriber.domain import Transcript
from transcriber.errors import OptionError
from transcriber.formats import docx_doc, json_doc, rttm, srt, tsv, txt, vtt
from transcriber.formats.json_doc import from_dict, to_dict
from transcriber.formats.json_schema import JSON_SCHEMA

__all__ = [
    "FORMATS",
    "JSON_SCHEMA",
    "Format",
    "FormatName",
    "from_dict",
    "parse_formats",
    "render",
    "to_dict",
]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    extension: str  # without the dot
    content_type: str
    render: Callable[[Transcript], bytes]


FormatName = Literal["txt", "srt", "vtt", "tsv", "json", "docx", "rttm"]
"""Every format's name, for request parameters (FORMATS has the same, in this order)."""

_UTF8 = "; charset=utf-8"

# Insertion order is the order shown to users in help and error messages.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("txt", "txt", "text/plain" + _UTF8, txt.render),
        Format("srt", "srt", "application/x-subrip" + _UTF8, srt.render),
        Format("vtt", "vtt", "text/vtt" + _UTF8, vtt.render),
        Format("tsv", "tsv", "text/tab-separated-values" + _UTF8, tsv.render),
        Format("json", "json", "application/json", json_doc.render),
        Format(
            "docx",
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx_doc.render,
        ),
        Format("rttm", "rttm", "text/plain" + _UTF8, rttm.render),
    )
}


def render(transcript: Transcript, fmt: str, name: str | None = None) -> bytes:
    """`transcript` written as `fmt` (a name from FORMATS, any case). `name`: what the
    recording is called (its file's stem), which RTTM writes as the file id of its lines
    so that turns of several files can be scored together."""
    names = parse_formats(fmt)
    if len(names) != 1:
        raise OptionError(f"render writes one format at a time, got {fmt!r}")
    if names[0] == "rttm" and name:
        return rttm.render(transcript, uri=name)
    return FORMATS[names[0]].render(transcript)


def parse_formats(spec: str) -> list[str]:
    """Names in "srt,VTT, txt": lower-cased, duplicates dropped, first-seen order kept.

    Raises OptionError naming every unknown format and listing the valid ones, so a user
    fixes all typos in one go.
    """
    names = [part.strip().lower() for part in spec.split(",")]
    names = [n for n in names if n]
    valid = ", ".join(FORMATS)
    unknown = list(dict.fromkeys(n for n in names if n not in FORMATS))
    if unknown:
        bad = ", ".join(repr(n) for n in unknown)
        noun = "format" if len(unknown) == 1 else "formats"
        raise OptionError(f"unknown output {noun} {bad}; valid formats: {valid}")
    if not names:
        raise OptionError(f"no output format given; valid formats: {valid}")
    return list(dict.fromkeys(names))
