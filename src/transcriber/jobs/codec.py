"""Task options and checkpoint steps to and from what the job store keeps."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

from transcriber.domain import ChannelMode, Checkpoint, Clip, Segment, TranscriptionOptions, Word


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


def checkpoint_to_text(step: Checkpoint) -> str:
    """A checkpoint step as compact JSON: segments and words as lists, UTF-8 as is."""
    body = {
        "s": [
            [seg.id, seg.start, seg.end, seg.text, seg.speaker, seg.avg_logprob,
             seg.no_speech_prob, [[w.start, w.end, w.word, w.probability, w.speaker]
                                  for w in seg.words]]
            for seg in step.segments
        ],
        "a": {str(k): v for k, v in step.audio_done.items()},
        "l": step.language,
        "p": step.language_probability,
    }  # fmt: skip
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def checkpoint_from_texts(texts: Iterable[str]) -> Checkpoint | None:
    """The checkpoint that stored steps add up to (None without any)."""
    return Checkpoint.joined(_step(json.loads(t)) for t in texts)


def _step(d: dict[str, Any]) -> Checkpoint:
    if "s" not in d:  # kept whole in tasks.checkpoint before revision 0006
        return _whole(d)
    segments = tuple(
        Segment(i, start, end, text, tuple(Word(*w) for w in words), speaker, logprob, nospeech)
        for i, start, end, text, speaker, logprob, nospeech, words in d["s"]
    )
    return Checkpoint(
        segments=segments,
        audio_done={int(k): float(v) for k, v in d["a"].items()},
        language=d.get("l"),
        language_probability=d.get("p"),
    )


def _whole(d: dict[str, Any]) -> Checkpoint:
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
