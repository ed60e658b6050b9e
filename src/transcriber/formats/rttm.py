"""RTTM: one `SPEAKER` line per speaker turn (NIST Rich Transcription Time Marked).

With diarization turns in the transcript's speakers, those are written, overlapping
speech included; otherwise turns are built from the labelled segments.
"""

from __future__ import annotations

from transcriber.domain import Transcript

MERGE_GAP_S = 0.5  # consecutive segments of one speaker closer than this form one turn


def _from_segments(transcript: Transcript) -> list[tuple[float, float, str]]:
    turns: list[list[float | str]] = []
    for seg in transcript.segments:
        if seg.speaker is None or seg.end <= seg.start:
            continue
        last = turns[-1] if turns else None
        if last and last[2] == seg.speaker and seg.start - float(last[1]) <= MERGE_GAP_S:
            last[1] = max(float(last[1]), seg.end)
        else:
            turns.append([seg.start, seg.end, seg.speaker])
    return [(float(a), float(b), str(c)) for a, b, c in turns]


def render(transcript: Transcript, uri: str = "audio") -> bytes:
    """The turns as RTTM lines; `uri` is their file id (the recording's name)."""
    turns = [(a, b, sp.label) for sp in transcript.speakers for a, b in sp.turns if b > a]
    turns = sorted(turns) or _from_segments(transcript)
    uri = _field(uri) or "audio"
    lines = [
        f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {_field(label)} <NA> <NA>"
        for start, end, label in turns
    ]
    return "".join(line + "\n" for line in lines).encode()


def _field(text: str) -> str:
    """One RTTM field: fields are split on white space, so none may hold any."""
    return "_".join(text.split())
