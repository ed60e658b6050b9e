"""RTTM, the NIST "who spoke when" format: one SPEAKER line per turn.

SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from transcriber.diarization.timeline import Turn


class Spoken(Protocol):
    """Anything with a time span and a speaker: a Turn, or a Segment with a label."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def speaker(self) -> str | None: ...


def _field(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip()) or "NA"


def to_rttm(items: Iterable[Spoken], uri: str) -> str:
    """RTTM text for turns or labelled segments; items without a speaker are left out."""
    lines = []
    for it in sorted(items, key=lambda t: (t.start, t.end)):
        if it.speaker is None or it.end <= it.start:
            continue
        lines.append(
            f"SPEAKER {_field(uri)} 1 {it.start:.3f} {it.end - it.start:.3f}"
            f" <NA> <NA> {_field(it.speaker)} <NA> <NA>"
        )
    return "".join(line + "\n" for line in lines)


def parse_rttm(text: str, uri: str | None = None) -> list[Turn]:
    """The SPEAKER lines of an RTTM (only those of `uri` when given), sorted by time."""
    turns = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(f"RTTM line {n}: expected at least 8 fields, got {len(fields)}")
        if uri is not None and fields[1] != uri:
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"RTTM line {n}: start and duration must be numbers") from None
        turns.append(Turn(start, round(start + duration, 6), fields[7]))
    return sorted(turns, key=lambda t: (t.start, t.end, t.speaker))
