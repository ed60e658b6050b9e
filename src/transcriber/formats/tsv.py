"""Tab-separated values, the same layout as whisper's `--output_format tsv`."""

from __future__ import annotations

from transcriber.domain import Transcript
from transcriber.formats.srt import speaker_label


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


def render(transcript: Transcript) -> bytes:
    """`start\\tend\\ttext` rows, times in integer milliseconds (exact, locale-proof).
    A segment's speaker leads its text as in SRT (`[Анна] …`): the three columns that
    whisper's readers expect stay three."""
    rows = ["start\tend\ttext"]
    for seg in transcript.segments:
        # A tab or newline in the text would shift or split the row; split() removes both.
        text = " ".join(seg.text.split())
        if text:
            said = f"{speaker_label(' '.join(seg.speaker.split()))}{text}" if seg.speaker else text
            rows.append(f"{_ms(seg.start)}\t{_ms(seg.end)}\t{said}")
    return "".join(row + "\n" for row in rows).encode()
