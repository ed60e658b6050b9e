"""Speaker diarization on CPU, offline, without torch: who spoke when, overlaps included.

The pyannote 3.x recipe on onnxruntime and numpy: pyannote segmentation-3.0 finds up to
three local speakers (two at once) in overlapping 10 s chunks; CAM++ embeds each local
speaker's clean speech; agglomerative clustering links local speakers into global ones;
the chunks are stitched back into turns that may overlap, which `assign_speakers` puts
onto the words and segments of a transcript.

    turns = diarize(path, regions, time_offset, num_speakers=None)
    segments, speakers = assign_speakers(segments_with_words, turns)
    rttm = to_rttm(turns, uri="meeting")

Nothing heavy happens at import time; the models load on first use.
"""

from __future__ import annotations

from transcriber.diarization.assign import SpeakerSummary, assign_speakers
from transcriber.diarization.der import DerResult, der
from transcriber.diarization.rttm import parse_rttm, to_rttm
from transcriber.diarization.speakers import analyse, diarize, turns_from_chunks
from transcriber.diarization.timeline import Turn, relabel, speaker_seconds
from transcriber.domain import SpeakerCount

__all__ = [
    "DerResult",
    "SpeakerCount",
    "SpeakerSummary",
    "Turn",
    "analyse",
    "assign_speakers",
    "der",
    "diarize",
    "parse_rttm",
    "relabel",
    "speaker_seconds",
    "to_rttm",
    "turns_from_chunks",
]
