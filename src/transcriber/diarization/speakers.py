"""Who spoke when: local speakers per chunk → global clusters → overlapping turns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from transcriber.diarization.campplus import SpeakerEncoder, default_encoder
from transcriber.diarization.clustering import cluster_chunks
from transcriber.diarization.local import Chunk, LocalSpeakers, step_frames_for
from transcriber.diarization.reconstruct import binary_activity, to_turns
from transcriber.diarization.refine import split_voices
from transcriber.diarization.segmentation import Segmenter, default_segmenter
from transcriber.diarization.timeline import Turn
from transcriber.domain import Clip, SpeakerCount
from transcriber.errors import OptionError
from transcriber.media.decode import probe, stream_audio
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import Region


def analyse(
    path: str | Path,
    channel: int | None = None,
    clip: Clip | None = None,
    segmenter: Segmenter | None = None,
    encoder: SpeakerEncoder | None = None,
    seconds: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    audio: Iterable[np.ndarray] | None = None,
    step_s: float | None = None,
) -> list[Chunk]:
    """Decode `path` again (the part of it in `clip`, `seconds` long if known), or read
    `audio`, that same 16 kHz stream as it was already decoded, and analyse all its
    chunks (every `step_s` seconds when given, else as `step_frames_for` picks for the
    length). `on_progress(seconds)` hears how far it got."""
    local = LocalSpeakers(
        segmenter or default_segmenter(),
        encoder or default_encoder(),
        step_frames_for(seconds, step_s),
    )
    done = 0
    if audio is None:
        audio = stream_audio(path, channel=channel, clip=clip)
    for chunk in audio:
        local.feed(chunk)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done / SAMPLE_RATE)
    return local.finish()


def turns_from_chunks(
    chunks: Sequence[Chunk], count: SpeakerCount | None = None, time_offset: float = 0.0
) -> list[Turn]:
    """Cluster the chunks' local speakers, part the voices one local speaker holds; turns
    labelled A, B, … by first appearance."""
    hard, centroids = cluster_chunks(chunks, count)
    labels, k = split_voices(chunks, hard, len(centroids), count)
    return to_turns(binary_activity(chunks, labels, k), time_offset)


def diarize(
    path: str | Path,
    regions: Sequence[Region],
    time_offset: float = 0.0,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    channel: int | None = None,
    clip: Clip | None = None,
    cache_dir: Path | None = None,
    duration: float | None = None,
    method: str = "pyannote",
    on_progress: Callable[[float], None] | None = None,
    audio: Iterable[np.ndarray] | None = None,
    step_s: float | None = None,
) -> list[Turn]:
    """Speaker turns (file seconds); turns of different speakers may overlap.

    `regions` are the VAD's speech regions (samples of the 16 kHz stream): with none,
    there is nobody to label and nothing is decoded. Otherwise `path` is decoded once
    more and the segmentation model finds the speech itself (it hears quiet, far
    talkers that the VAD misses). Raises OptionError for contradictory speaker counts
    and ModelError when the weights are missing. The CAM++ graph built from its weights
    is kept in `cache_dir` (the model cache) when given. `duration` (seconds of audio
    in the clip) sets the chunk step; the container's is used when it is not given.
    `method="dvector"` runs the earlier resemblyzer method instead (no overlap).
    `on_progress(seconds)` hears how far the decoding got (seconds of the clip).
    `audio`: the clip's 16 kHz mono stream, already decoded (media/spool.py), read
    instead of decoding `path` again (the pyannote method). `step_s`: seconds between
    chunk starts (TRANSCRIBER_DIARIZATION_STEP_S); None or 0 picks it by length.
    """
    count = SpeakerCount.of(num_speakers, min_speakers, max_speakers)
    if method == "dvector":
        from transcriber.diarization.dvector import diarize_dvectors

        return diarize_dvectors(
            path, regions, time_offset, num_speakers, min_speakers, max_speakers, channel, clip
        )
    if method != "pyannote":
        raise OptionError(f"unknown diarization method {method!r}; use pyannote or dvector")
    if not regions:
        return []
    # Load both models before decoding, so that missing weights fail early.
    segmenter, encoder = default_segmenter(), default_encoder(cache_dir)
    if duration is None:
        declared = probe(path).duration
        duration = clip.length(declared) if clip is not None else declared
    chunks = analyse(path, channel, clip, segmenter, encoder, duration, on_progress, audio, step_s)
    return turns_from_chunks(chunks, count, time_offset)
