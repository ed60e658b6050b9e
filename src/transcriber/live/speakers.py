"""Speaker labels for live finals: the d-vector method's windows and clustering, grown online.

Each final's audio is embedded as it comes (resemblyzer windows, numpy: cheap enough to
run per final, where the segmentation model would read the whole session again each
time); the embeddings of the whole session so far are clustered again, and the new
segment takes the speaker whose turns overlap it most. Labels are A, B, … by first
appearance, so the first voice stays A. These are guesses from the speech so far; the
saved task is labelled once more from the whole recording, as a file is, with the
service's diarization method (`LiveSession.transcript`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from transcriber.diarization.dvector import turns_from_embeddings
from transcriber.diarization.embed import Embeddings, SpeakerEmbedder
from transcriber.diarization.timeline import Turn
from transcriber.domain import Segment, SpeakerCount
from transcriber.media.frames import SAMPLE_RATE


class OnlineSpeakers:
    """Used from one thread at a time (the session's finals are labelled in order)."""

    def __init__(self, count: SpeakerCount | None = None) -> None:
        self.count = count or SpeakerCount(1, None)
        self._parts: list[Embeddings] = []
        self._pieces = 0

    def label_segments(
        self, audio: np.ndarray, audio_start: float, segments: Sequence[Segment]
    ) -> list[str | None]:
        """Speakers of `segments`, whose speech is in `audio` (its first sample at
        `audio_start` stream seconds)."""
        embedder = SpeakerEmbedder()
        for seg in segments:
            a = max(0, round((seg.start - audio_start) * SAMPLE_RATE))
            b = min(len(audio), round((seg.end - audio_start) * SAMPLE_RATE))
            if b > a:
                embedder.add_speech(audio[a:b], seg.start)
        found = embedder.finish()
        if len(found.vectors):
            self._parts.append(replace(found, pieces=found.pieces + self._pieces))
            self._pieces += int(found.pieces.max()) + 1
        turns = self.turns()
        return [speaker_at(turns, s.start, s.end) for s in segments]

    def turns(self) -> list[Turn]:
        """Speaker turns from every final so far."""
        if not self._parts:
            return []
        joined = Embeddings(
            vectors=np.concatenate([p.vectors for p in self._parts]),
            spans=np.concatenate([p.spans for p in self._parts]),
            pieces=np.concatenate([p.pieces for p in self._parts]),
            full=np.concatenate([p.full for p in self._parts]),
        )
        return turns_from_embeddings(joined, self.count)


def speaker_at(turns: Sequence[Turn], start: float, end: float) -> str | None:
    """The speaker whose turns overlap [start, end] most; the nearest one if none does."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for t in turns:
        o = min(end, t.end) - max(start, t.start)
        if o > 0:
            overlap[t.speaker] = overlap.get(t.speaker, 0.0) + o
    if overlap:
        return max(overlap, key=lambda s: overlap[s])
    middle = (start + end) / 2
    return min(turns, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker
