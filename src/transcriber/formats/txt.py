"""Plain text: what a reader wants, without timestamps."""

from __future__ import annotations

from transcriber.domain import Transcript


def render(transcript: Transcript) -> bytes:
    """One line per segment; with speakers, one line per uninterrupted turn, "A: ..."."""
    lines: list[str] = []
    turn: str | None = None
    for seg in transcript.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        if seg.speaker is None:
            lines.append(text)
        elif seg.speaker == turn:
            # The same speaker going on is one thought; splitting it mid-turn reads badly.
            lines[-1] += " " + text
        else:
            lines.append(f"{seg.speaker}: {text}")
        turn = seg.speaker
    return "".join(line + "\n" for line in lines).encode()
