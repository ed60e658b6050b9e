"""Put speaker turns onto the transcript: every word and segment gets a speaker.

A word takes the speaker whose turns overlap it most, the most active one where two
talk at once (or the nearest turn when none does). A segment whose words change speaker
is split there, at word times; speakers are then renamed A, B, … in the order they
first speak in the transcript. A segment is flagged `overlap` when someone else talks
over at least OVERLAP_S of it (or half of a shorter one).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

from transcriber.diarization.timeline import Turn, label_name, speaker_seconds
from transcriber.domain import Segment, Word

OVERLAP_S = 0.5


@dataclass(frozen=True, slots=True)
class SpeakerSummary:
    label: str
    seconds: float  # total speaking time, from the diarization turns
    turns: tuple[tuple[float, float], ...] = ()  # (start, end), may overlap other speakers


class _TurnIndex:
    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.reach: list[float] = []  # running max of turn ends, to skip turns over by then
        self.reach_at: list[int] = []  # which turn reaches that far
        top, at = float("-inf"), 0
        for i, t in enumerate(self.turns):
            if t.end > top:
                top, at = t.end, i
            self.reach.append(top)
            self.reach_at.append(at)

    def speaker(self, start: float, end: float) -> str | None:
        """The speaker talking most in [start, end]; the nearest turn's when nobody is."""
        if not self.turns:
            return None
        hi = bisect.bisect_right(self.starts, end)
        lo = bisect.bisect_left(self.reach, start)
        overlap: dict[str, float] = {}
        for t in self.turns[lo:hi]:
            o = min(end, t.end) - max(start, t.start)
            if o > 0 or (o == 0 and start == end and t.start <= start <= t.end):
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + max(o, 1e-9)
        if overlap:
            return max(overlap, key=lambda s: overlap[s])
        mid = (start + end) / 2
        candidates = self.turns[lo:hi]
        if hi < len(self.turns):
            candidates.append(self.turns[hi])
        if lo > 0:
            candidates.append(self.turns[self.reach_at[lo - 1]])
        near = min(candidates, key=lambda t: max(t.start - mid, mid - t.end, 0.0))
        return near.speaker

    def overlapped(self, start: float, end: float, speaker: str | None) -> bool:
        """Does someone other than `speaker` talk over enough of [start, end]?"""
        if not self.turns or end <= start:
            return False
        hi = bisect.bisect_right(self.starts, end)
        lo = bisect.bisect_left(self.reach, start)
        others: dict[str, float] = {}
        for t in self.turns[lo:hi]:
            if t.speaker != speaker:
                others[t.speaker] = others.get(t.speaker, 0.0) + max(
                    0.0, min(end, t.end) - max(start, t.start)
                )
        return max(others.values(), default=0.0) >= min(OVERLAP_S, (end - start) / 2)


def _flag(seg: Segment, index: _TurnIndex) -> Segment:
    return replace(seg, overlap=index.overlapped(seg.start, seg.end, seg.speaker))


def _split(seg: Segment, index: _TurnIndex) -> list[Segment]:
    return [_flag(p, index) for p in _pieces(seg, index)]


def _pieces(seg: Segment, index: _TurnIndex) -> list[Segment]:
    if not seg.words:
        return [replace(seg, speaker=index.speaker(seg.start, seg.end))]
    words = [replace(w, speaker=index.speaker(w.start, w.end)) for w in seg.words]
    groups: list[list[Word]] = []
    for w in words:
        if groups and groups[-1][-1].speaker == w.speaker:
            groups[-1].append(w)
        else:
            groups.append([w])
    if len(groups) == 1:
        return [replace(seg, words=tuple(words), speaker=words[0].speaker)]
    out = []
    for i, group in enumerate(groups):
        start = seg.start if i == 0 else group[0].start
        end = seg.end if i == len(groups) - 1 else group[-1].end
        out.append(
            replace(
                seg,
                start=start,
                end=max(start, end),
                text="".join(w.word for w in group).strip(),
                words=tuple(group),
                speaker=group[0].speaker,
            )
        )
    return out


def assign_speakers(
    segments: Sequence[Segment], turns: Sequence[Turn]
) -> tuple[list[Segment], list[SpeakerSummary]]:
    """Segments (split at speaker changes, renumbered from 1) and each speaker's total time.

    Give segments *with* their words: they are what lets a segment be split. Speakers
    are renamed A, B, … by first appearance in the transcript; a speaker of the turns
    who says no word is left out of the summary.
    """
    index = _TurnIndex(turns)
    pieces = [
        p for seg in sorted(segments, key=lambda s: (s.start, s.end)) for p in _split(seg, index)
    ]
    names: dict[str, str] = {}
    for p in pieces:
        for who in [w.speaker for w in p.words] or [p.speaker]:
            if who is not None and who not in names:
                names[who] = label_name(len(names))

    def rename(who: str | None) -> str | None:
        return names.get(who) if who is not None else None

    out = [
        replace(
            p,
            id=i,
            speaker=rename(p.speaker),
            words=tuple(replace(w, speaker=rename(w.speaker)) for w in p.words),
        )
        for i, p in enumerate(pieces, start=1)
    ]
    seconds = speaker_seconds(turns)
    spans: dict[str, list[tuple[float, float]]] = {}
    for t in sorted(turns, key=lambda t: (t.start, t.end)):
        spans.setdefault(t.speaker, []).append((t.start, t.end))
    summary = [
        SpeakerSummary(new, seconds.get(old, 0.0), tuple(spans.get(old, ())))
        for old, new in names.items()
    ]
    return out, summary
