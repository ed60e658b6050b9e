"""The earlier method, kept as an option (`TRANSCRIBER_DIARIZATION_METHOD=dvector`):
resemblyzer d-vectors of 1.5 s windows over the VAD's speech regions → k-means with a
calibrated count rule → one speaker at a time.

It still wins on one dev file we measured (AMI dev01: two men of similar voice in one
room, which the segmentation model keeps as one local speaker; docs/diarization.md),
and it needs `pip install --no-deps resemblyzer==0.1.4`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transcriber.diarization.cluster import DEFAULT_MAX_SPEAKERS, cluster
from transcriber.diarization.embed import Embeddings, SpeakerEmbedder
from transcriber.diarization.timeline import Turn, make_turns, smooth
from transcriber.domain import Clip, SpeakerCount
from transcriber.media.decode import stream_audio
from transcriber.media.vad import Region


def embed_regions(
    path: str | Path,
    regions: Sequence[Region],
    channel: int | None = None,
    time_offset: float = 0.0,
    clip: Clip | None = None,
) -> Embeddings:
    """Decode `path` again and embed the speech in `regions` (samples of its 16 kHz stream,
    or of the part of it in `clip`)."""
    embedder = SpeakerEmbedder(time_offset)
    todo = sorted(regions, key=lambda r: r.start)
    for chunk in stream_audio(path, channel=channel, clip=clip):
        embedder.feed(chunk, todo)
        todo = []
    return embedder.finish()


def turns_from_embeddings(emb: Embeddings, count: SpeakerCount | None = None) -> list[Turn]:
    """Cluster the windows and return speaker turns labelled A, B, … by first appearance."""
    count = count or SpeakerCount(1, None)
    if len(emb.vectors) == 0:
        return []
    high = count.high if count.high is not None else max(count.low, DEFAULT_MAX_SPEAKERS)
    labels, _ = cluster(emb.vectors, emb.pieces, min_k=count.low, max_k=high)
    return make_turns(emb.spans, smooth(labels, emb.pieces))


def diarize_dvectors(
    path: str | Path,
    regions: Sequence[Region],
    time_offset: float = 0.0,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    channel: int | None = None,
    clip: Clip | None = None,
) -> list[Turn]:
    """Speaker turns (file seconds) for the speech `regions` (samples of the 16 kHz stream).

    `path` is decoded once more and only the embeddings are kept. Raises OptionError
    for contradictory speaker counts and ModelError when the weights are missing.
    """
    count = SpeakerCount.of(num_speakers, min_speakers, max_speakers)
    from transcriber.diarization.encoder import default_weights

    default_weights()  # fail early, before decoding, if the weights are missing
    return turns_from_embeddings(embed_regions(path, regions, channel, time_offset, clip), count)
