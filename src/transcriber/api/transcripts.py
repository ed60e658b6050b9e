"""A completed task's transcript as people edited it: read it, change it, undo a change.

Every view of a transcript (the downloads, `/v1`-shaped exports, `/v2`, the WebSocket's
summary, the web page) reads it through `current`, so an edit made on one device is
what every other one sees. The machine's transcript stays in the store untouched
(`original`); edits are revisions in the job database (jobs/edit_log.py).

These functions block (store, database, model): routes call them in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from fastapi.responses import Response

from transcriber.api.services import Services
from transcriber.api.strict import listed
from transcriber.domain import Clip, Segment, Transcript, Word
from transcriber.edits import (
    Edited,
    SegmentChange,
    apply,
    check_label,
    merge_names,
    normal_text,
    retime,
    spread,
    undo_target,
    with_speaker,
)
from transcriber.engines.align import MAX_ALIGN_S
from transcriber.errors import ConflictError, NotFoundError, OptionError, naming
from transcriber.formats import FORMATS
from transcriber.formats import render as render_format
from transcriber.formats.json_doc import parse, render
from transcriber.jobs.edit_log import edit_conflict
from transcriber.jobs.events import TaskEvent
from transcriber.jobs.record import TaskRecord
from transcriber.jobs.status import TaskStatus
from transcriber.media.decode import probe, stream_audio

# Audio either side of a segment given to the aligner: a word said at its very edge
# needs its onset and decay in view.
ALIGN_PAD_S = 0.5
CHANNEL_LABEL = re.compile(r"^channel (\d+)$")


@dataclass(frozen=True, slots=True)
class SegmentEdit:
    """What a person changed in one segment: its text, its speaker, or back to the
    machine's version (`revert`)."""

    id: int
    text: str | None = None
    speaker: str | None = None
    revert: bool = False


def completed(task: TaskRecord) -> None:
    if task.status != TaskStatus.completed or not task.result_key:
        raise ConflictError(f"task {task.id} is {task.status.value}; no transcript yet")


def original(services: Services, task: TaskRecord) -> Transcript:
    """The transcript as the machine made it."""
    completed(task)
    assert task.result_key is not None
    return parse(services.store.get_bytes(task.result_key))


def current(services: Services, task: TaskRecord) -> Edited:
    """The transcript with every revision applied, speakers under their labels."""
    return apply(original(services, task), services.jobs.edits.revisions(task.id))


def shown(services: Services, task: TaskRecord) -> Transcript:
    """The transcript every view and download shows: edited, speakers under their names."""
    return current(services, task).named()


def document(services: Services, task: TaskRecord, version: str = "current") -> bytes:
    """The JSON document of the transcript shown (`original`: the machine's, as stored)."""
    completed(task)
    assert task.result_key is not None
    if version == "original" or not services.jobs.edits.latest(task.id):
        return services.store.get_bytes(task.result_key)
    return render(shown(services, task))


def edit(
    services: Services,
    task: TaskRecord,
    read: int,
    segments: Sequence[SegmentEdit],
    speaker_names: Mapping[str, str],
) -> Edited:
    """Make revision `read + 1` from these changes; EditConflictError when `read` is not
    the latest revision. Edited text is timed against the audio before it is saved."""
    machine = original(services, task)
    revisions = services.jobs.edits.revisions(task.id)
    latest = revisions[-1].number if revisions else 0
    if latest != read:  # refused before the aligner's work; `append` checks it again
        raise edit_conflict(task.id, read, latest)
    now = apply(machine, revisions)
    by_id = {s.id: s for s in now.transcript.segments}
    machine_by_id = {s.id: s for s in machine.segments}
    timed = any(s.words for s in machine.segments)
    labelled = any(w.speaker is not None for s in machine.segments for w in s.words)
    afters: dict[int, Segment] = {}
    reverted: set[int] = set()  # machine segments back as they were: their words are timed
    for change in segments:
        seg = afters.get(change.id) or by_id.get(change.id)
        if seg is None:
            raise NotFoundError(f"task {task.id} has no segment {change.id}")
        if change.revert:
            afters[change.id] = machine_by_id[change.id]
            reverted.add(change.id)
            continue
        reverted.discard(change.id)
        speaker = check_label(change.speaker) if change.speaker else seg.speaker
        after = replace(seg, speaker=speaker, words=with_speaker(seg.words, speaker, labelled))
        text = None if change.text is None else normal_text(change.text, f"segment {seg.id}'s text")
        if text is not None and text != seg.text:
            after = replace(after, text=text)
        afters[change.id] = after
    seen = [now.transcript, machine]
    refuse_unknown_speakers(task, speaker_names, seen, afters.values(), now.speaker_names)
    # Each segment whose text this request changes is aligned once, however many of its
    # entries name it (the last one wins): (as it is now, with the new text).
    to_align = [
        (by_id[i], after)
        for i, after in afters.items()
        if timed and i not in reverted and after.text != by_id[i].text
    ]
    if to_align:
        aligned = _timed(services, task, machine, [after for _, after in to_align])
        for (seg, after), words in zip(to_align, aligned, strict=True):
            new = retime(seg.words, words, after.start, after.end)
            afters[after.id] = replace(after, words=with_speaker(new, after.speaker, labelled))
    names = merge_names(now.speaker_names, speaker_names)
    changes = [SegmentChange(by_id[i], s) for i, s in afters.items() if s != by_id[i]]
    if not changes and names == dict(now.speaker_names):
        return now
    services.jobs.edits.append(task.id, read, changes, names)
    return _published(services, task, machine)


def refuse_unknown_speakers(
    task: TaskRecord,
    names: Mapping[str, str],
    transcripts: Sequence[Transcript],
    changed: Iterable[Segment],
    named: Iterable[str],
) -> None:
    """OptionError naming the labels of `names` that no speaker of the task has: not in
    the transcript as it is or as the machine made it, not given a segment by this
    change, not named before (a misspelt label would be stored and show nowhere)."""
    known = {st.label for t in transcripts for st in t.speakers} | set(named)
    for seg in (*(s for t in transcripts for s in t.segments), *changed):
        known.update(w.speaker for w in seg.words if w.speaker is not None)
        if seg.speaker is not None:
            known.add(seg.speaker)
    unknown = [label for label in names if " ".join(label.split()) not in known]
    if not unknown:
        return
    has = f"its speakers are {listed(map(repr, sorted(known)))}" if known else "it has no speakers"
    raise OptionError(f"task {task.id} has no speaker {listed(map(repr, unknown))} to name; {has}")


def undo(services: Services, task: TaskRecord, read: int) -> Edited:
    """Take back the latest revision not yet taken back, as revision `read + 1`."""
    machine = original(services, task)
    revisions = services.jobs.edits.revisions(task.id)
    target = undo_target(revisions)
    if target is None:
        raise ConflictError(f"the transcript of task {task.id} has no edit to undo")
    now = apply(machine, revisions)
    by_id = {s.id: s for s in now.transcript.segments}
    back = [SegmentChange(by_id[c.id], c.before) for c in target.changes if c.id in by_id]
    before = next((r for r in reversed(revisions) if r.number < target.number), None)
    names = dict(before.speaker_names) if before else {}
    services.jobs.edits.append(task.id, read, back, names, undoes=target.number)
    return _published(services, task, machine)


def _published(services: Services, task: TaskRecord, machine: Transcript) -> Edited:
    """The transcript after a change, announced to whoever watches the task."""
    after = apply(machine, services.jobs.edits.revisions(task.id))
    data = {"id": task.id, "revision": after.revision}
    services.events.publish(TaskEvent(task.id, task.owner, "edited", data))
    return after


def _timed(
    services: Services, task: TaskRecord, machine: Transcript, segments: Sequence[Segment]
) -> list[list[Word]]:
    """Words of each segment's new text, timed on the file's clock: aligned to its audio
    by the task's model, or spread over it where alignment cannot work."""
    out: list[list[Word]] = []
    channels = {s.id: _channel(task, s) for s in machine.segments}
    translated = machine.task == "translate"
    model = task.options.get("model")
    with ExitStack() as held:
        held.enter_context(naming(task.input_key, task.filename))
        path = held.enter_context(services.store.local_path(task.input_key))
        held.enter_context(naming(path, task.filename))
        info = probe(path)
        # The model is held (not unloaded as idle) while it aligns.
        engine = None if translated else held.enter_context(services.engines.use(model))
        for seg in segments:
            a = max(0.0, seg.start - ALIGN_PAD_S)
            b = seg.end + ALIGN_PAD_S
            if engine is None or b - a > MAX_ALIGN_S or not seg.text:
                out.append(spread(seg.text, seg.start, seg.end))
                continue
            audio = _audio(path, a - info.start_offset, b - info.start_offset, channels.get(seg.id))
            words = engine.align(audio, seg.text, machine.language or "en")
            if not words:  # nothing the aligner could place: spread, rather than no words
                out.append(spread(seg.text, seg.start, seg.end))
                continue
            out.append([replace(w, start=w.start + a, end=w.end + a) for w in words])
    return out


def _audio(path: Path, start: float, end: float, channel: int | None) -> np.ndarray:
    clip = Clip(max(0.0, start), max(end, start + 0.01))
    chunks = list(stream_audio(path, channel=channel, clip=clip))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _channel(task: TaskRecord, seg: Segment) -> int | None:
    """The channel whose audio a segment is in, when each channel was its own speaker."""
    if task.options.get("channels") != "split" or seg.speaker is None:
        return None
    m = CHANNEL_LABEL.match(seg.speaker)
    return int(m.group(1)) - 1 if m else None


def download(task: TaskRecord, raw: bytes, fmt: str, label: str = "") -> Response:
    """A stored JSON document of `task` as a download in `fmt`, named after the task's
    file (`NAME{label}.EXT`; `label` marks an earlier version, `.v2`)."""
    # export imports this module
    from transcriber.api.routes.export import content_disposition, download_stem

    stem = download_stem(task.filename)
    if fmt == "json":
        body = raw
    else:
        transcript = parse(raw)
        if fmt == "rttm":
            check_speakers_for_rttm(task, transcript)
        body = render_format(transcript, fmt, name=stem)
    spec = FORMATS[fmt]
    headers = {"Content-Disposition": content_disposition(f"{stem}.{spec.extension}", label)}
    return Response(body, media_type=spec.content_type, headers=headers)


def check_speakers_for_rttm(task: TaskRecord, transcript: Transcript) -> None:
    """ConflictError for RTTM of a transcript without speaker labels: it lists who spoke
    when, and an empty file would read as "nobody spoke". (A task transcribed with them
    that found no speech has an empty RTTM, rightly.)"""
    asked = bool(task.options.get("diarize")) or task.options.get("channels") == "split"
    labelled = bool(transcript.speakers) or any(s.speaker for s in transcript.segments)
    if not (asked or labelled):
        raise ConflictError(
            f"task {task.id} has no speaker labels, which rttm lists: transcribe it again"
            f" with them (POST /api/tasks/{task.id}/rerun with diarize=true)"
        )
