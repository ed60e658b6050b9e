"""Cut a window's timed words into readable segments.

Windows are decoded without timestamp tokens (faster and, measured on the dev
set, more accurate); segment boundaries then come from word times: sentence
ends, pauses, and a cap on length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from transcriber.domain import Segment, Word

SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")
PAUSE_S = 1.0  # a silence this long always ends a segment
SOFT_MAX_S = 12.0  # past this, a comma is enough to end a segment
HARD_MAX_S = 24.0


def split_words(words: Sequence[Word]) -> Iterator[list[Word]]:
    current: list[Word] = []
    for w in words:
        if current:
            gap = w.start - current[-1].end
            length = w.end - current[0].start
            if gap >= PAUSE_S or length > HARD_MAX_S:
                yield current
                current = []
        current.append(w)
        token = w.word.strip()
        length = current[-1].end - current[0].start
        if token.endswith(SENTENCE_END) or (length > SOFT_MAX_S and token.endswith((",", ";"))):
            yield current
            current = []
    if current:
        yield current


def segments_from_words(
    words: Sequence[Word], avg_logprob: float | None, no_speech_prob: float | None
) -> Iterator[Segment]:
    for group in split_words(words):
        text = "".join(w.word for w in group).strip()
        if not text:
            continue
        yield Segment(
            id=0,
            start=group[0].start,
            end=max(group[-1].end, group[0].start),
            text=text,
            words=tuple(group),
            avg_logprob=avg_logprob,
            no_speech_prob=no_speech_prob,
        )
