"""Who spoke when: embeddings of the speech regions → clusters → speaker turns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from transcriber.diarization.cluster import DEFAULT_MAX_SPEAKERS, cluster
from transcriber.diarization.embed import Embeddings, SpeakerEmbedder
from transcriber.diarization.timeline import Turn, make_turns, smooth
from transcriber.domain import Clip, SpeakerCount
from transcriber.media.decode import stream_audio
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import Region


def embed_regions(
    path: str | Path,
    regions: Sequence[Region],
    channel: int | None = None,
    time_offset: float = 0.0,
    clip: Clip | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Embeddings:
    """Decode `path` again and embed the speech in `regions` (samples of its 16 kHz stream,
    or of the part of it in `clip`). `on_progress(seconds)` hears how far it got."""
    embedder = SpeakerEmbedder(time_offset)
    todo = sorted(regions, key=lambda r: r.start)
    done = 0
    for chunk in stream_audio(path, channel=channel, clip=clip):
        embedder.feed(chunk, todo)
        todo = []
        done += len(chunk)
        if on_progress is not None:
            on_progress(done / SAMPLE_RATE)
    return embedder.finish()


def turns_from_embeddings(emb: Embeddings, count: SpeakerCount | None = None) -> list[Turn]:
    """Cluster the windows and return speaker turns labelled A, B, … by first appearance."""
    count = count or SpeakerCount(1, None)
    if len(emb.vectors) == 0:
        return []
    high = count.high if count.high is not None else max(count.low, DEFAULT_MAX_SPEAKERS)
    labels, _ = cluster(emb.vectors, emb.pieces, min_k=count.low, max_k=high)
    return make_turns(emb.spans, smooth(labels, emb.pieces))


def diarize(
    path: str | Path,
    regions: Sequence[Region],
    time_offset: float = 0.0,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    channel: int | None = None,
    clip: Clip | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> list[Turn]:
    """Speaker turns (file seconds) for the speech `regions` (samples of the 16 kHz stream).

    `path` is decoded once more and only the embeddings are kept. Raises OptionError
    for contradictory speaker counts and ModelError when the weights are missing.
    """
    count = SpeakerCount.of(num_speakers, min_speakers, max_speakers)
    from transcriber.diarization.encoder import default_weights

    default_weights()  # fail early, before decoding, if the weights are missing
    embeddings = embed_regions(path, regions, channel, time_offset, clip, on_progress)
    return turns_from_embeddings(embeddings, count)
