"""SubRip (.srt): the caption format every player and editor accepts."""

from __future__ import annotations

from transcriber.domain import Transcript
from transcriber.formats.captions import MAX_CHARS, Cue, build_cues, timestamp


def speaker_label(speaker: str) -> str:
    """SRT has no speaker markup, so the label is part of the visible text."""
    return f"[{speaker}] "


def _block(number: int, cue: Cue) -> str:
    lines = list(cue.lines)
    if cue.speaker:
        lines[0] = speaker_label(cue.speaker) + lines[0]
    times = f"{timestamp(cue.start_ms, ',')} --> {timestamp(cue.end_ms, ',')}"
    return "\n".join([str(number), times, *lines])


def render(transcript: Transcript, max_chars: int = MAX_CHARS) -> bytes:
    """`max_chars`: the longest caption line (AssemblyAI's `chars_per_caption`)."""
    cues = build_cues(transcript.segments, lambda s: len(speaker_label(s)), max_chars)
    if not cues:
        return b""
    # Numbering starts at 1: some players silently drop a cue numbered 0.
    return ("\n\n".join(_block(n, cue) for n, cue in enumerate(cues, start=1)) + "\n").encode()
