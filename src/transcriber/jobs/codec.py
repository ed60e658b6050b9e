"""Task options and checkpoints to and from JSON-safe dicts for the job store."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from transcriber.domain import ChannelMode, Clip, Segment, TranscriptionOptions, Word
from transcriber.pipeline import Checkpoint


def options_to_dict(o: TranscriptionOptions) -> dict[str, Any]:
    d = asdict(o)
    d["channels"] = o.channels.value
    return d


def options_from_dict(d: dict[str, Any]) -> TranscriptionOptions:
    known = {f.name for f in fields(TranscriptionOptions)}
    values = {k: v for k, v in d.items() if k in known}
    values["channels"] = ChannelMode(values.get("channels", "mix"))
    values["clip"] = Clip(**values.get("clip") or {})  # tasks stored before clips: whole
    return TranscriptionOptions(**values)


def checkpoint_to_dict(cp: Checkpoint) -> dict[str, Any]:
    return {
        "segments": [asdict(s) for s in cp.segments],
        "audio_done": {str(k): v for k, v in cp.audio_done.items()},
        "language": cp.language,
        "language_probability": cp.language_probability,
    }


def checkpoint_from_dict(d: dict[str, Any] | None) -> Checkpoint | None:
    if not d:
        return None
    segments = tuple(
        Segment(**{**s, "words": tuple(Word(**w) for w in s.get("words", ()))})
        for s in d.get("segments", [])
    )
    return Checkpoint(
        segments=segments,
        audio_done={int(k): float(v) for k, v in d.get("audio_done", {}).items()},
        language=d.get("language"),
        language_probability=d.get("language_probability"),
    )
