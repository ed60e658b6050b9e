"""Edits to a finished transcript: typed revisions, and how they apply. No I/O lives here.

The machine's transcript is never changed. A revision records, for each segment it
touched, the segment before and after, and every speaker name after it; the current
transcript is the machine's with each revision's segments put in, in order. Undoing a
revision is a new revision that puts the "before" segments back, so revision numbers only
grow and two editors can always tell whether they saw the latest one.

Word timings after a text edit: the words a person left as they were keep the times
the recogniser gave them; the new words are timed by alignment against the audio
(engines/align.py) and kept in order between their unchanged neighbours, inside the
segment (`retime`).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from transcriber.domain import Segment, SpeakerStat, Transcript, Word
from transcriber.errors import OptionError

MAX_SEGMENT_TEXT = 2000
MAX_SPEAKER_NAME = 100
# A label a person may give a segment's speaker: "A", "channel 2", "Interviewer".
SPEAKER_LABEL = re.compile(r"^[\w][\w .'-]{0,31}$")


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """One segment of a revision, as it was before and as it is after."""

    before: Segment
    after: Segment

    @property
    def id(self) -> int:
        return self.after.id


@dataclass(frozen=True, slots=True)
class Revision:
    """Revision `number` of a transcript (the machine's is 0)."""

    number: int
    changes: tuple[SegmentChange, ...]
    speaker_names: Mapping[str, str]  # every name after this revision, by label
    created_at: datetime | None = None
    undoes: int | None = None  # the revision this one undid


@dataclass(frozen=True, slots=True)
class Edited:
    """A transcript with its revisions applied: what every view shows."""

    transcript: Transcript  # speakers still under their labels
    revision: int
    speaker_names: Mapping[str, str] = field(default_factory=dict)
    edited: frozenset[int] = frozenset()  # ids of segments that differ from the machine's

    def named(self) -> Transcript:
        """The transcript with each named speaker under its name (for exports)."""
        return with_names(self.transcript, self.speaker_names)


def apply(original: Transcript, revisions: Sequence[Revision]) -> Edited:
    """`original` with `revisions` (in order of their numbers) applied."""
    if not revisions:
        return Edited(original, 0)
    by_id = {s.id: s for s in original.segments}
    for rev in revisions:
        for change in rev.changes:
            if change.id in by_id:  # a revision only ever names segments of this transcript
                by_id[change.id] = change.after
    segments = tuple(by_id[s.id] for s in original.segments)
    edited = frozenset(s.id for s, o in zip(segments, original.segments, strict=True) if s != o)
    current = replace(
        original,
        segments=segments,
        speakers=restated(original.speakers, original.segments, segments),
    )
    last = revisions[-1]
    return Edited(current, last.number, dict(last.speaker_names), edited)


def restated(
    stats: Sequence[SpeakerStat], before: Sequence[Segment], after: Sequence[Segment]
) -> tuple[SpeakerStat, ...]:
    """Speaking times after segments moved between speakers: each moved segment's length
    goes from its old speaker to its new one; a speaker left with no segment is dropped."""
    seconds = {s.label: s.seconds for s in stats}
    for old, new in zip(before, after, strict=True):
        if old.speaker == new.speaker:
            continue
        length = max(0.0, old.end - old.start)
        if old.speaker is not None and old.speaker in seconds:
            seconds[old.speaker] = max(0.0, seconds[old.speaker] - length)
        if new.speaker is not None:
            seconds[new.speaker] = seconds.get(new.speaker, 0.0) + length
    speaking = {s.speaker for s in after if s.speaker is not None}
    return tuple(
        SpeakerStat(label, round(secs, 3)) for label, secs in seconds.items() if label in speaking
    )


def with_names(t: Transcript, names: Mapping[str, str]) -> Transcript:
    """`t` with every speaker label that has a name replaced by it."""
    if not names:
        return t

    def one(label: str | None) -> str | None:
        return names.get(label, label) if label is not None else None

    segments = tuple(
        replace(
            s,
            speaker=one(s.speaker),
            words=tuple(replace(w, speaker=one(w.speaker)) for w in s.words),
        )
        for s in t.segments
    )
    speakers = tuple(SpeakerStat(one(s.label) or s.label, s.seconds) for s in t.speakers)
    return replace(t, segments=segments, speakers=speakers)


def undo_target(revisions: Sequence[Revision]) -> Revision | None:
    """The latest revision that is neither an undo nor undone: the one Undo takes back.

    Every revision after it is an undo of a later one, so the segments it changed are
    still as it left them, and putting its "before" back is exact.
    """
    undone = {r.undoes for r in revisions if r.undoes is not None}
    for rev in reversed(revisions):
        if rev.undoes is None and rev.number not in undone:
            return rev
    return None


def refuse_control(text: str, what: str) -> None:
    """OptionError naming the first control character of `text` (NUL, ESC, …) other
    than the whitespace that is folded into spaces (tab, line breaks): they would be
    written raw into the txt, srt and tsv downloads."""
    bad = next((c for c in text if unicodedata.category(c) == "Cc" and not c.isspace()), None)
    if bad is not None:
        raise OptionError(f"{what} holds the control character U+{ord(bad):04X}; send text only")


def normal_text(text: str, what: str = "a segment's text") -> str:
    """A segment's text as a person typed it, on one line, checked."""
    refuse_control(text, what)
    clean = " ".join(text.split())
    if len(clean) > MAX_SEGMENT_TEXT:
        raise OptionError(
            f"a segment's text is at most {MAX_SEGMENT_TEXT} characters, got {len(clean)}"
        )
    return clean


def check_label(label: str) -> str:
    clean = " ".join(label.split())
    if not SPEAKER_LABEL.match(clean):
        raise OptionError(
            f"speaker {label!r}: a label is 1 to 32 letters, digits, spaces, dots, dashes"
            " or apostrophes, starting with a letter or digit"
        )
    return clean


def merge_names(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """Speaker names after `changes` (label → name; an empty name removes it)."""
    names = dict(current)
    for label, name in changes.items():
        refuse_control(name, f"the name of speaker {label!r}")
        clean = " ".join(name.split())[:MAX_SPEAKER_NAME]
        if clean:
            names[check_label(label)] = clean
        else:
            names.pop(label, None)
    return names


def spread(text: str, start: float, end: float) -> list[Word]:
    """Words of `text` laid over [start, end] by their length in characters: the timing
    used where the audio cannot be aligned (a translation, a stretch over 30 s)."""
    words = text.split()
    total = sum(len(w) + 1 for w in words)
    span = max(0.0, end - start)
    out, pos = [], 0
    for w in words:
        a = start + span * pos / total
        pos += len(w) + 1
        out.append(Word(round(a, 3), round(start + span * (pos - 1) / total, 3), f" {w}"))
    return out


def retime(old: Sequence[Word], new: Sequence[Word], start: float, end: float) -> tuple[Word, ...]:
    """The words `new` (the edited text, with times from alignment) where every word that
    is unchanged from `old` keeps its old times, and the others are placed in order
    between their unchanged neighbours, inside [start, end]."""
    matcher = difflib.SequenceMatcher(
        a=[w.word.strip() for w in old], b=[w.word.strip() for w in new], autojunk=False
    )
    kept: dict[int, Word] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            kept[block.b + k] = old[block.a + k]
    out: list[Word] = []
    i = 0
    while i < len(new):
        if i in kept:
            out.append(replace(kept[i], word=new[i].word))
            i += 1
            continue
        j = i
        while j < len(new) and j not in kept:
            j += 1
        lo = max(start, out[-1].end) if out else start
        hi = min(end, kept[j].start) if j < len(new) else end
        out.extend(_place(new[i:j], lo, max(lo, hi)))
        i = j
    return tuple(out)


def _place(run: Sequence[Word], lo: float, hi: float) -> list[Word]:
    """Aligned words kept inside [lo, hi] and in order; spread by length over it when the
    alignment put them all outside it."""
    placed: list[Word] = []
    at = lo
    for w in run:
        a = min(max(w.start, at), hi)
        b = min(max(w.end, a), hi)
        placed.append(replace(w, start=round(a, 3), end=round(b, 3), probability=1.0))
        at = b
    if hi - lo > 0.05 and placed and placed[-1].end - placed[0].start <= 0.01:
        text = " ".join(w.word.strip() for w in run)
        spaced = spread(text, lo, hi)
        if len(spaced) == len(run):
            return [replace(w, start=s.start, end=s.end, probability=1.0)
                    for w, s in zip(run, spaced, strict=True)]  # fmt: skip
    return placed


def with_speaker(words: Iterable[Word], speaker: str | None, labelled: bool) -> tuple[Word, ...]:
    """Words given the segment's speaker, when the transcript labels words at all."""
    return tuple(replace(w, speaker=speaker if labelled else w.speaker) for w in words)
