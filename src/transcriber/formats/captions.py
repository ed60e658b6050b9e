"""Segments → timed caption cues, shared by the SRT and WebVTT writers.

The limits follow common subtitling practice (42 characters, two lines): a cue then fits a
phone screen and can be read at normal speed. Cues never span two segments, because a
segment boundary is where the speaker may change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from transcriber.domain import Segment

MAX_CHARS = 42
MAX_LINES = 2
MIN_DURATION_MS = 200
# Text left on screen through a long pause reads as if it were still being said.
MAX_PAUSE_S = 1.0
_SENTENCE_END = (".", "!", "?", "…")


@dataclass(frozen=True, slots=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: float
    end: float


def timestamp(ms: int, sep: str) -> str:
    """`HH:MM:SS<sep>mmm`; hours grow past two digits rather than wrap."""
    hours, rest = divmod(max(ms, 0), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{millis:03d}"


def build_cues(
    segments: Iterable[Segment],
    label_width: Callable[[str], int] | None = None,
    max_chars: int = MAX_CHARS,
) -> list[Cue]:
    """Cues for `segments`, ordered, non-overlapping, each at least 1 ms long.

    `label_width(speaker)` is how many characters of the first line a writer will spend on
    a visible speaker label, so that the label still fits within `max_chars` per line.
    """
    cues: list[Cue] = []
    for seg in segments:
        tokens = _word_tokens(seg)
        timed = bool(tokens)
        tokens = tokens or _text_tokens(seg)
        reserve = label_width(seg.speaker) if seg.speaker and label_width else 0
        for group in _group(tokens, max(max_chars - reserve, 1), max_chars, timed):
            lines = tuple(" ".join(t.text for t in line) for line in group)
            cues.append(Cue(_ms(group[0][0].start), _ms(group[-1][-1].end), lines, seg.speaker))
    return _settle(cues)


def _ms(seconds: float) -> int:
    # Whole milliseconds from here on, so the writers' rounding cannot reintroduce overlap.
    return max(round(seconds * 1000), 0)


def _word_tokens(seg: Segment) -> list[_Token]:
    # Whisper words carry their leading space and a word without one continues the previous
    # word (punctuation, split tokens). Hand-made words often have no spaces at all; then
    # each word stands alone.
    whisper_style = any(w.word[:1].isspace() for w in seg.words[1:])
    tokens: list[_Token] = []
    for w in seg.words:
        text = " ".join(w.word.split())
        if not text:
            continue
        end = max(w.end, w.start)
        if tokens and whisper_style and not w.word[:1].isspace():
            prev = tokens[-1]
            tokens[-1] = _Token(prev.text + text, prev.start, max(prev.end, end))
        else:
            tokens.append(_Token(text, w.start, end))
    return tokens


def _text_tokens(seg: Segment) -> list[_Token]:
    # Without word timings, spread the segment's time over its characters: long words take
    # longer to say, so this tracks speech far better than an even split per word.
    words = seg.text.split()
    total = sum(len(w) for w in words) + len(words) - 1
    if total <= 0:
        return []
    span = max(seg.end - seg.start, 0.0)
    tokens: list[_Token] = []
    pos = 0
    for w in words:
        start = seg.start + span * pos / total
        tokens.append(_Token(w, start, seg.start + span * (pos + len(w)) / total))
        pos += len(w) + 1
    return tokens


def _group(
    tokens: list[_Token], first_width: int, width_rest: int, timed: bool
) -> list[list[list[_Token]]]:
    """Greedy fill: tokens → lines → cues. A token never splits; an over-long one sits alone."""
    cues: list[list[list[_Token]]] = []
    lines: list[list[_Token]] = []
    for tok in tokens:
        if lines and _starts_new_cue(lines, tok, timed, width_rest):
            cues.append(lines)
            lines = []
        if not lines:
            lines = [[tok]]
            continue
        width = first_width if len(lines) == 1 else width_rest
        if _width(lines[-1]) + 1 + len(tok.text) <= width:
            lines[-1].append(tok)
        elif len(lines) < MAX_LINES:
            lines.append([tok])
        else:
            cues.append(lines)
            lines = [[tok]]
    if lines:
        cues.append(lines)
    return cues


def _starts_new_cue(lines: list[list[_Token]], tok: _Token, timed: bool, width: int) -> bool:
    prev = lines[-1][-1]
    if timed and tok.start - prev.end > MAX_PAUSE_S:
        return True
    # Once a cue holds a full line, a new sentence reads better starting on a fresh cue.
    return prev.text.endswith(_SENTENCE_END) and sum(_width(line) for line in lines) >= width


def _width(line: list[_Token]) -> int:
    return sum(len(t.text) for t in line) + len(line) - 1


def _settle(cues: list[Cue]) -> list[Cue]:
    # Split-channel calls overlap in time, and players stack or drop overlapping cues, so
    # order by start and clip each cue at the next one; the minimum duration gives a short
    # word a chance to be read, but never at the cost of an overlap.
    ordered = sorted(cues, key=lambda c: c.start_ms)
    settled: list[Cue] = []
    prev_end = 0
    for i, cue in enumerate(ordered):
        start = max(cue.start_ms, prev_end)
        end = max(cue.end_ms, start + MIN_DURATION_MS)
        if i + 1 < len(ordered):
            end = min(end, ordered[i + 1].start_ms)
        end = max(end, start + 1)
        settled.append(replace(cue, start_ms=start, end_ms=end))
        prev_end = end
    return settled
