"""LocalAgreement: which words of a growing utterance are settled.

Whisper is not a streaming model: each new decode of the utterance's audio so far may
change words it gave before, mostly near the end, where the audio stops mid-word. A
word is *committed* once two consecutive decodes agree on it and on every word before
it (the LocalAgreement-2 policy of Macháček et al., "Turning Whisper into Real-Time
Transcription System", 2023). Committed words are shown as stable text and are never
taken back; the rest is a guess that the next decode may change.

Words are compared without case, punctuation or ё, so that a comma Whisper adds once
the next word is heard does not hold a word back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from transcriber.domain import Word

_NOT_LETTERS = re.compile(r"[\W_]+")
# A decode's words that start this much before the last committed word ends are
# taken to be that word or an earlier one, heard again.
OVERLAP_S = 0.1
# How many words at the seam are checked for a repeat of the committed tail.
MAX_NGRAM = 5


def same_word(a: str, b: str) -> bool:
    return key(a) == key(b)


def key(word: str) -> str:
    return _NOT_LETTERS.sub("", word.lower().replace("ё", "е"))


class LocalAgreement:
    """Feed each decode of the utterance's buffer to `update`; read `committed` and
    `tentative`. Times are the stream's own (seconds), so the buffer may be cut."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        self.tentative: list[Word] = []

    def update(self, hypothesis: Sequence[Word]) -> list[Word]:
        """Take a new decode of the buffer; return the words it newly commits."""
        new = self._beyond_committed(hypothesis)
        agreed: list[Word] = []
        for before, now in zip(self.tentative, new, strict=False):
            if not key(now.word) or not same_word(before.word, now.word):
                break
            agreed.append(now)
        self.committed += agreed
        self.tentative = new[len(agreed) :]
        return agreed

    def cut(self, upto: int) -> list[Word]:
        """Remove and return the first `upto` committed words (they became a final)."""
        taken, self.committed = self.committed[:upto], self.committed[upto:]
        return taken

    def reset(self) -> None:
        self.committed, self.tentative = [], []

    def _beyond_committed(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The part of a decode that comes after the committed words."""
        if not self.committed:
            return [w for w in hypothesis if key(w.word)]
        last = self.committed[-1].end
        new = [w for w in hypothesis if w.start > last - OVERLAP_S and key(w.word)]
        # A committed word whose time moved a little may come back at the seam: drop
        # the longest head of `new` that repeats the committed tail.
        for n in range(min(MAX_NGRAM, len(new), len(self.committed)), 0, -1):
            tail = [key(w.word) for w in self.committed[-n:]]
            if [key(w.word) for w in new[:n]] == tail:
                return new[n:]
        return new
