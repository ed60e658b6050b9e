"""Speaker turns: from one cluster label per embedding window to who spoke when."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MERGE_GAP_S = 0.05  # same-speaker spans closer than this become one turn


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker talking from `start` to `end`, file seconds."""

    start: float
    end: float
    speaker: str


def smooth(labels: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """Flip a single window whose two neighbours in the same piece agree on another label.

    One 1.5 s window that disagrees with both of its neighbours is far more often a
    noisy embedding than a turn: a real turn that short is rarely separable at all.
    """
    out = labels.copy()
    for i in range(1, len(labels) - 1):
        same_piece = pieces[i - 1] == pieces[i] == pieces[i + 1]
        if same_piece and labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def label_name(index: int) -> str:
    """0 → "A", 25 → "Z", 26 → "AA", …"""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def make_turns(spans: np.ndarray, labels: Sequence[int] | np.ndarray) -> list[Turn]:
    """Merge consecutive spans of the same label; labels are renamed A, B, … by first turn."""
    names: dict[int, str] = {}
    turns: list[Turn] = []
    order = np.argsort(spans[:, 0], kind="stable") if len(spans) else np.zeros(0, np.int64)
    for i in order:
        start, end, label = float(spans[i, 0]), float(spans[i, 1]), int(labels[i])
        name = names.setdefault(label, label_name(len(names)))
        last = turns[-1] if turns else None
        if last is not None and last.speaker == name and start - last.end <= MERGE_GAP_S:
            turns[-1] = Turn(last.start, max(last.end, end), name)
        else:
            turns.append(Turn(start, end, name))
    return [Turn(round(t.start, 3), round(t.end, 3), t.speaker) for t in turns]


def relabel(turns: Sequence[Turn]) -> list[Turn]:
    """The same turns with speakers renamed A, B, … in order of first appearance."""
    names: dict[str, str] = {}
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    for t in ordered:
        names.setdefault(t.speaker, label_name(len(names)))
    return [Turn(t.start, t.end, names[t.speaker]) for t in ordered]


def speaker_seconds(turns: Sequence[Turn]) -> dict[str, float]:
    """Total speaking time per speaker (overlapping turns of one speaker counted once)."""
    out: dict[str, float] = {}
    by_speaker: dict[str, list[Turn]] = {}
    for t in turns:
        by_speaker.setdefault(t.speaker, []).append(t)
    for name, ts in by_speaker.items():
        total, reach = 0.0, -np.inf
        for t in sorted(ts, key=lambda t: t.start):
            total += max(0.0, t.end - max(t.start, reach))
            reach = max(reach, t.end)
        out[name] = round(total, 3)
    return out
