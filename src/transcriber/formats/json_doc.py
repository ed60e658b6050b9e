"""JSON: the full result, a superset of the S3-event result document, and its inverse.

Segment text is stripped for readers; word text keeps whisper's leading space because that
space is what tells a new word from the continuation of the previous one.
"""

from __future__ import annotations

import json
from typing import Any

from transcriber.domain import Notice, NoticeCode, Segment, SpeakerStat, Transcript, Word


def _t(seconds: float) -> float:
    # Millisecond precision is all any consumer can use; more only bloats the file.
    return round(float(seconds), 3)


def _word(w: Word) -> dict[str, Any]:
    out: dict[str, Any] = {"start": _t(w.start), "end": _t(w.end), "word": w.word}
    out["probability"] = w.probability
    if w.speaker is not None:
        out["speaker"] = w.speaker
    return out


def _segment(s: Segment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "start": _t(s.start),
        "end": _t(s.end),
        "text": s.text.strip(),
        "speaker": s.speaker,
        "words": [_word(w) for w in s.words],
    }
    # Decoder confidences are optional extras; absent rather than null keeps old readers happy.
    if s.avg_logprob is not None:
        out["avg_logprob"] = s.avg_logprob
    if s.no_speech_prob is not None:
        out["no_speech_prob"] = s.no_speech_prob
    if s.overlap:
        out["overlap"] = True  # someone else talks over it; absent means not flagged
    return out


def _speaker(sp: SpeakerStat) -> dict[str, Any]:
    out: dict[str, Any] = {"label": sp.label, "seconds": _t(sp.seconds)}
    if sp.turns:
        out["turns"] = [[_t(a), _t(b)] for a, b in sp.turns]
    return out


def segment_to_dict(s: Segment) -> dict[str, Any]:
    """One segment as the document writes it (an edit revision stores them so)."""
    return _segment(s)


def segment_from_dict(s: dict[str, Any]) -> Segment:
    """The inverse of `segment_to_dict`; KeyError, TypeError or ValueError if not one."""
    return Segment(
        id=int(s["id"]),
        start=float(s["start"]),
        end=float(s["end"]),
        text=str(s["text"]),
        speaker=s.get("speaker"),
        words=tuple(
            Word(
                start=float(w["start"]),
                end=float(w["end"]),
                word=str(w["word"]),
                probability=float(w.get("probability", 1.0)),
                speaker=w.get("speaker"),
            )
            for w in s.get("words") or ()
        ),
        avg_logprob=_opt_float(s.get("avg_logprob")),
        no_speech_prob=_opt_float(s.get("no_speech_prob")),
        overlap=bool(s.get("overlap", False)),
    )


def notice_doc(n: Notice) -> dict[str, Any]:
    """A notice as the JSON document's `metadata.warnings` and the task view hold it."""
    return {"code": n.code.value, "message": n.message, "values": dict(n.values)}


def to_dict(transcript: Transcript) -> dict[str, Any]:
    t = transcript
    return {
        "text": t.text,
        "language": t.language,
        "language_probability": t.language_probability,
        "duration": _t(t.duration),
        "segments": [_segment(s) for s in t.segments],
        "speakers": [_speaker(sp) for sp in t.speakers],
        "metadata": {
            "total_segments": len(t.segments),
            "processing_time": _t(t.processing_time),
            "model": t.model,
            "engine": t.engine,
            "task": t.task,
            "timings": {k: _t(v) for k, v in t.timings.items()},
            "warnings": [notice_doc(n) for n in t.notices],
        },
    }


def render(transcript: Transcript) -> bytes:
    return json.dumps(to_dict(transcript), ensure_ascii=False, indent=2).encode() + b"\n"


def from_dict(d: dict[str, Any]) -> Transcript:
    """The Transcript a `to_dict` document describes; ValueError if it is not one."""
    try:
        meta = d.get("metadata") or {}
        segments = tuple(segment_from_dict(s) for s in d["segments"])
        return Transcript(
            segments=segments,
            language=d.get("language"),
            language_probability=_opt_float(d.get("language_probability")),
            duration=float(d["duration"]),
            model=str(meta.get("model", "")),
            engine=str(meta.get("engine", "")),
            task=str(meta.get("task") or "transcribe"),
            processing_time=float(meta.get("processing_time", 0.0)),
            timings={str(k): float(v) for k, v in (meta.get("timings") or {}).items()},
            speakers=tuple(
                SpeakerStat(
                    str(sp["label"]),
                    float(sp["seconds"]),
                    tuple((float(a), float(b)) for a, b in sp.get("turns") or ()),
                )
                for sp in d.get("speakers") or ()
            ),
            notices=tuple(_notices(meta.get("warnings") or ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"not a transcript document: {e!r}") from e


def _notices(items: Any) -> list[Notice]:
    known = {c.value for c in NoticeCode}
    return [
        Notice(NoticeCode(n["code"]), str(n["message"]), dict(n.get("values") or {}))
        for n in items
        if n.get("code") in known  # one a later version added: left out, not an error
    ]


def parse(data: bytes | str) -> Transcript:
    """The Transcript in a rendered JSON document."""
    return from_dict(json.loads(data))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
