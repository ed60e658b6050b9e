"""Which greedily decoded windows are decoded again with the beam.

Every window is first decoded greedily: one hypothesis instead of five, about a third
of the cost of beam search on a CPU (docs/performance.md). A window whose greedy words
all look sure keeps them. A window with a word the model itself doubted, or with the
marks of a failed decoding that Whisper's own fallback rules look for, is decoded
again with the beam from the same encoder output.

The signals, all from the greedy pass and the word alignment that runs anyway:

- a word whose probability (the mean of its tokens' probabilities, as the model gave
  them) is below WORD_PROBABILITY: the beam is most often right where greedy search
  picked between close alternatives;
- a repetitive text (gzip compression ratio above COMPRESSION_CEILING): greedy search
  falls into loops far more often than beam search;
- a low mean log-probability (below LOG_PROB_FLOOR) in a window that is not silence
  (Whisper's no-speech probability at most NO_SPEECH_PROB).

The thresholds follow Whisper's fallback rules where Whisper has one; the word
threshold was chosen on the dev set (`python -m bench.gate`, docs/performance.md).
There no threshold made the gate both cheaper and as accurate as full beam: a 30 s
window nearly always holds some doubted word, so the gate is an option
(TRANSCRIBER_DECODING=gated), not the default.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Any

# Whisper's rule for "this window was not speech": both must hold.
NO_SPEECH_PROB = 0.6
LOG_PROB_FLOOR = -1.0
COMPRESSION_CEILING = 2.4  # above this, text is repetitive: a decoding loop
# A greedy word less probable than this sends its window to the beam.
WORD_PROBABILITY = 0.3


class Doubt(str, Enum):
    """Why a greedy window is decoded again with the beam."""

    unsure_word = "unsure_word"
    repetitive = "repetitive"
    improbable = "improbable"


def doubt(raw: Sequence[dict[str, Any]]) -> Doubt | None:
    """Why a window's greedy segments (faster-whisper's dicts, with words) should be
    decoded again with the beam; None when they look sure, or are silence."""
    for s in raw:
        if not s["text"].strip():
            continue
        if s["compression_ratio"] > COMPRESSION_CEILING:
            return Doubt.repetitive
        if s["avg_logprob"] < LOG_PROB_FLOOR and s["no_speech_prob"] <= NO_SPEECH_PROB:
            return Doubt.improbable
        if any(w["probability"] < WORD_PROBABILITY for w in s.get("words") or ()):
            return Doubt.unsure_word
    return None


class Tally:
    """Windows one transcription decoded greedily, and those it sent on to the beam by
    reason; batches add to it from several model copies at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.windows = 0
        self.beamed: Counter[Doubt] = Counter()

    def add(self, doubts: Sequence[Doubt | None]) -> None:
        with self._lock:
            self.windows += len(doubts)
            self.beamed.update(d for d in doubts if d is not None)

    def __str__(self) -> str:
        sent = sum(self.beamed.values())
        why = ", ".join(f"{n} {d.value}" for d, n in self.beamed.most_common())
        return f"{sent} of {self.windows} greedy windows decoded again with the beam" + (
            f" ({why})" if why else ""
        )
