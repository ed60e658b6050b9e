"""Speaker diarization on CPU, offline, without torch: who spoke when.

resemblyzer's d-vector LSTM (weights read from its PyPI package, run in numpy) embeds
sliding windows of the VAD's speech regions; the windows are clustered by speaker
(the count estimated unless given) and turned into speaker turns, which
`assign_speakers` puts onto the words and segments of a transcript.

    turns = diarize(path, regions, time_offset, num_speakers=None)
    segments, speakers = assign_speakers(segments_with_words, turns)
    rttm = to_rttm(segments, uri="meeting")

Nothing heavy happens at import time; the weights load on first use.
"""

from __future__ import annotations

from transcriber.diarization.assign import SpeakerSummary, assign_speakers
from transcriber.diarization.der import DerResult, der
from transcriber.diarization.embed import Embeddings, SpeakerEmbedder
from transcriber.diarization.encoder import INSTALL_HINT, weights_path
from transcriber.diarization.rttm import parse_rttm, to_rttm
from transcriber.diarization.speakers import diarize, embed_regions, turns_from_embeddings
from transcriber.diarization.timeline import Turn, relabel, speaker_seconds
from transcriber.domain import SpeakerCount

__all__ = [
    "INSTALL_HINT",
    "DerResult",
    "Embeddings",
    "SpeakerCount",
    "SpeakerEmbedder",
    "SpeakerSummary",
    "Turn",
    "assign_speakers",
    "der",
    "diarize",
    "embed_regions",
    "parse_rttm",
    "relabel",
    "speaker_seconds",
    "to_rttm",
    "turns_from_embeddings",
    "weights_path",
]
