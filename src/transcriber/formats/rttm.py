"""RTTM: one `SPEAKER` line per speaker turn (NIST Rich Transcription Time Marked)."""

from __future__ import annotations

from transcriber.domain import Transcript

MERGE_GAP_S = 0.5  # consecutive segments of one speaker closer than this form one turn


def render(transcript: Transcript, uri: str = "audio") -> bytes:
    turns: list[list[float | str]] = []
    for seg in transcript.segments:
        if seg.speaker is None or seg.end <= seg.start:
            continue
        last = turns[-1] if turns else None
        if last and last[2] == seg.speaker and seg.start - float(last[1]) <= MERGE_GAP_S:
            last[1] = max(float(last[1]), seg.end)
        else:
            turns.append([seg.start, seg.end, seg.speaker])
    lines = [
        f"SPEAKER {uri} 1 {float(start):.3f} {float(end) - float(start):.3f} <NA> <NA> "
        f"{str(label).replace(' ', '_')} <NA> <NA>"
        for start, end, label in turns
    ]
    return "".join(line + "\n" for line in lines).encode()
