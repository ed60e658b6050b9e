"""WebVTT (.vtt): the caption format of HTML5 <track>, with real speaker markup."""

from __future__ import annotations

from transcriber.domain import Transcript
from transcriber.formats.captions import MAX_CHARS, Cue, build_cues, timestamp


def _escape(text: str) -> str:
    # "<" and "&" start markup in cue text; escaping ">" also keeps "-->" out of it.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _block(cue: Cue) -> str:
    lines = [_escape(line) for line in cue.lines]
    if cue.speaker:
        # The voice span runs to the end of the cue, so it needs no closing tag.
        lines[0] = f"<v {_escape(cue.speaker)}>{lines[0]}"
    times = f"{timestamp(cue.start_ms, '.')} --> {timestamp(cue.end_ms, '.')}"
    return "\n".join([times, *lines])


def render(transcript: Transcript, max_chars: int = MAX_CHARS) -> bytes:
    # The voice tag is not displayed, so the speaker costs no line width here.
    cues = build_cues(transcript.segments, max_chars=max_chars)
    return "\n\n".join(["WEBVTT", *(_block(cue) for cue in cues)]).encode() + b"\n"
