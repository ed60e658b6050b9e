"""AssemblyAI's transcript objects, made from this service's tasks and transcripts.

Pure functions, so that the shapes are tested without a server. Times are whole
milliseconds and speakers are letters ("A", "B", …), as AssemblyAI has them; a
channel of a split call is both a `channel` ("1") and a speaker letter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from transcriber.diarization.timeline import label_name
from transcriber.domain import Segment, Transcript
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus

STATUS = {
    TaskStatus.queued: "queued",
    TaskStatus.processing: "processing",
    TaskStatus.completed: "completed",
    TaskStatus.failed: "error",
    TaskStatus.cancelled: "error",
}
SENTENCE_END = re.compile(r"[.!?…。？！]['\"»”)\]]*$")
PARAGRAPH_PAUSE_S = 2.0
PARAGRAPH_MAX_WORDS = 150
_CHANNEL = re.compile(r"^channel (\d+)$")


@dataclass(frozen=True, slots=True)
class AaiWord:
    text: str
    start: int
    end: int
    confidence: float
    speaker: str | None
    channel: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end,
                "confidence": self.confidence, "speaker": self.speaker,
                "channel": self.channel}  # fmt: skip


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def speaker_and_channel(label: str | None) -> tuple[str | None, str | None]:
    """Our label → AssemblyAI's (speaker, channel): "channel 2" → ("B", "2")."""
    if label is None:
        return None, None
    m = _CHANNEL.match(label)
    if m:
        return label_name(int(m.group(1)) - 1), m.group(1)
    return label, None


def respell(t: Transcript, rules: Iterable[dict[str, Any]]) -> Transcript:
    """AssemblyAI's `custom_spelling`: every `from` spelling (any case, a word or a
    phrase) becomes its `to`, in the text and in the words; punctuation is kept."""
    spelled = {f.strip(): str(r["to"]) for r in rules for f in r["from"] if f.strip()}
    if not spelled:
        return t
    table = {p.lower(): to for p, to in spelled.items()}  # a later rule wins, in any case
    phrases = sorted(spelled, key=len, reverse=True)  # the longest match wins
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)", re.IGNORECASE
    )

    def spelling(m: re.Match[str]) -> str:
        said = m.group(1)
        if (to := table.get(said.lower())) is not None:
            return to
        # The regex and str.lower() fold a few letters differently (İ, ſ, K): ask the regex.
        return next(spelled[p] for p in phrases if re.fullmatch(re.escape(p), said, re.I))

    return t.retext(lambda text: pattern.sub(spelling, text))


def words(transcript: Transcript) -> list[AaiWord]:
    return [w for seg in transcript.segments for w in _segment_words(seg)]


def _segment_words(seg: Segment) -> Iterator[AaiWord]:
    speaker, channel = speaker_and_channel(seg.speaker)
    if seg.words:
        for w in seg.words:
            if text := w.word.strip():
                who, ch = speaker_and_channel(w.speaker) if w.speaker else (speaker, channel)
                yield AaiWord(text, ms(w.start), ms(w.end), round(w.probability, 4), who, ch)
        return
    # A task made without word timings: the segment's words, timed by character position.
    tokens = seg.text.split()
    total = len(" ".join(tokens)) or 1
    span = max(seg.end - seg.start, 0.0)
    confidence = round(min(1.0, math.exp(seg.avg_logprob)), 4) if seg.avg_logprob else 0.0
    pos = 0
    for t in tokens:
        start, end = (seg.start + span * p / total for p in (pos, pos + len(t)))
        pos += len(t) + 1
        yield AaiWord(t, ms(start), ms(end), confidence, speaker, channel)


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return round(sum(vals) / len(vals), 4) if vals else 0.0


def _span(group: list[AaiWord], **extra: Any) -> dict[str, Any]:
    return {
        "text": " ".join(w.text for w in group),
        "start": group[0].start,
        "end": group[-1].end,
        "confidence": _mean(w.confidence for w in group),
        "speaker": group[0].speaker,
        "channel": group[0].channel,
        "words": [w.as_dict() for w in group],
        **extra,
    }


def utterances(ws: list[AaiWord]) -> list[dict[str, Any]]:
    """Turns: runs of consecutive words of one speaker."""
    out: list[list[AaiWord]] = []
    for w in ws:
        if out and (out[-1][-1].speaker, out[-1][-1].channel) == (w.speaker, w.channel):
            out[-1].append(w)
        else:
            out.append([w])
    return [_span(group) for group in out]


def sentences(ws: list[AaiWord]) -> list[list[AaiWord]]:
    """Words cut after sentence-ending punctuation and where the speaker changes."""
    out: list[list[AaiWord]] = []
    current: list[AaiWord] = []
    for w in ws:
        if current and (current[-1].speaker, current[-1].channel) != (w.speaker, w.channel):
            out.append(current)
            current = []
        current.append(w)
        if SENTENCE_END.search(w.text):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def paragraphs(ws: list[AaiWord]) -> list[list[AaiWord]]:
    """Sentences joined until the speaker changes, a long pause, or a paragraph is long."""
    out: list[list[AaiWord]] = []
    for sentence in sentences(ws):
        if out:
            last = out[-1][-1]
            same = (last.speaker, last.channel) == (sentence[0].speaker, sentence[0].channel)
            pause = (sentence[0].start - last.end) / 1000
            if same and pause < PARAGRAPH_PAUSE_S and len(out[-1]) < PARAGRAPH_MAX_WORDS:
                out[-1].extend(sentence)
                continue
        out.append(list(sentence))
    return out


def spans_body(
    kind: str, groups: list[list[AaiWord]], transcript: Transcript, model: str
) -> dict[str, Any]:
    """The body of `/sentences` or `/paragraphs`."""
    ws = [w for g in groups for w in g]
    return {
        kind: [_span(g) for g in groups],
        "confidence": _mean(w.confidence for w in ws),
        "audio_duration": round(transcript.duration, 3),
        "speech_model_used": model,
    }


def _norm(text: str) -> str:
    return re.sub(r"[^\w'-]+", "", text.lower().replace("ё", "е"))


def word_search(task_id: str, ws: list[AaiWord], terms: list[str]) -> dict[str, Any]:
    """Where each term (a word or a phrase) is said: AssemblyAI's `/word-search` body."""
    normed = [_norm(w.text) for w in ws]
    matches = []
    for term in terms:
        parts = [p for p in (_norm(t) for t in term.split()) if p]
        if not parts:
            continue
        n = len(parts)
        hits = [i for i in range(len(ws) - n + 1) if normed[i : i + n] == parts]
        if hits:
            matches.append({
                "text": term.strip(),
                "count": len(hits),
                "timestamps": [[ws[i].start, ws[i + n - 1].end] for i in hits],
                "indexes": hits,
            })  # fmt: skip
    return {"id": task_id, "total_count": sum(m["count"] for m in matches), "matches": matches}


def transcript_body(
    task: TaskRecord, transcript: Transcript | None, base_url: str, model: str
) -> dict[str, Any]:
    """The transcript object of `GET /v2/transcript/{id}` for any task of this service."""
    o = task.options
    aai: dict[str, Any] = o.get("assemblyai") or {}
    hook = o.get("webhook") if isinstance(o.get("webhook"), dict) else None
    clip = o.get("clip") or {}
    # A language the client named reads back as sent (`en_us`), though the model is told `en`.
    named = (aai.get("language_code") or o["language"]) if o.get("language") else None
    status = STATUS[task.status]
    error = None
    if status == "error":
        error = task.error or ("cancelled" if task.status == TaskStatus.cancelled else "failed")
    body: dict[str, Any] = {
        "id": task.id,
        "status": status,
        "error": error,
        "audio_url": aai.get("audio_url") or f"{base_url}/api/tasks/{task.id}/media",
        "language_code": named or task.language or aai.get("language_code"),
        "language_detection": o.get("language") is None,
        "language_confidence": None,
        "speaker_labels": bool(o.get("diarize")),
        "speakers_expected": o.get("num_speakers"),
        "multichannel": o.get("channels") == "split",
        "punctuate": True,
        "format_text": True,
        # As sent; a task of /api/tasks, or one made before they were kept, from its clip
        # (where a start of 0 is the default, not something asked for).
        "audio_start_from": aai.get("audio_start_from", _ms(clip.get("start") or None)),
        "audio_end_at": aai.get("audio_end_at", _ms(clip.get("end"))),
        "speech_model": aai.get("speech_model"),
        "language_confidence_threshold": o.get("min_language_probability"),
        "speech_threshold": o.get("min_speech_fraction"),
        "custom_spelling": aai.get("custom_spelling"),
        "filter_profanity": bool(aai.get("filter_profanity")),
        "speech_model_used": model,
        "webhook_url": hook["url"] if hook else None,
        "webhook_auth": bool(hook and hook.get("header_name")),
        "webhook_auth_header_name": hook.get("header_name") if hook else None,
        # What the receiver answered, 0 when it never answered; null until a delivery ends.
        "webhook_status_code": task.webhook_status if hook else None,
        "audio_duration": round(task.duration) if task.duration else None,
        "text": None,
        "words": None,
        "utterances": None,
        "confidence": None,
    }
    if transcript is not None:
        ws = words(transcript)
        labelled = body["speaker_labels"] or body["multichannel"]
        body |= {
            "text": transcript.text,
            "words": [w.as_dict() for w in ws],
            "utterances": utterances(ws) if labelled else None,
            "confidence": _mean(w.confidence for w in ws),
            "audio_duration": round(transcript.duration),
            "language_code": named or transcript.language,
        }
        if body["language_detection"]:
            body["language_confidence"] = transcript.language_probability
    return body


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def list_item(task: TaskRecord, base_url: str) -> dict[str, Any]:
    aai: dict[str, Any] = task.options.get("assemblyai") or {}
    done = task.finished_at.isoformat() if task.finished_at else None
    return {
        "id": task.id,
        "resource_url": f"{base_url}/v2/transcript/{task.id}",
        "status": STATUS[task.status],
        "created": task.created_at.isoformat(),
        "completed": done if task.status == TaskStatus.completed else None,
        "audio_url": aai.get("audio_url") or f"{base_url}/api/tasks/{task.id}/media",
        "error": task.error if task.status in (TaskStatus.failed, TaskStatus.cancelled) else None,
    }
