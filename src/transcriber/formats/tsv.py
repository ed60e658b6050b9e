"""Tab-separated values, the same layout as whisper's `--output_format tsv`."""

from __future__ import annotations

from transcriber.domain import Transcript


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)


def render(transcript: Transcript) -> bytes:
    """`start\\tend\\ttext` rows, times in integer milliseconds (exact, locale-proof)."""
    rows = ["start\tend\ttext"]
    for seg in transcript.segments:
        # A tab or newline in the text would shift or split the row; split() removes both.
        text = " ".join(seg.text.split())
        if text:
            rows.append(f"{_ms(seg.start)}\t{_ms(seg.end)}\t{text}")
    return "".join(row + "\n" for row in rows).encode()
