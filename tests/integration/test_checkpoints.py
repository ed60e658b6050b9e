"""Checkpoints in linear space: a run reports one step per batch with only that batch's
segments, the steps add up to the transcript, and a run resumed from some of them ends
exactly where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_audio
from transcriber.domain import Checkpoint, Segment, TranscriptionOptions, Word
from transcriber.formats import render
from transcriber.jobs.codec import checkpoint_from_texts, checkpoint_to_text
from transcriber.pipeline import Pipeline


def test_steps_round_trip_through_their_text() -> None:
    word = Word(0.0, 0.5, " Привет,", 0.93, "A")
    segment = Segment(1, 0.0, 1.25, " Привет, мир", (word,), "A", -0.21, 0.013)
    first = Checkpoint((segment,), {0: 1.5})
    second = Checkpoint((Segment(2, 1.5, 3.0, "ещё", ()),), {0: 3.0, 1: 0.5}, "ru", 0.875)
    texts = [checkpoint_to_text(first), checkpoint_to_text(second)]
    assert "Привет" in texts[0]  # UTF-8 as is: Cyrillic is not six bytes a letter
    joined = checkpoint_from_texts(texts)
    assert joined == Checkpoint(first.segments + second.segments, {0: 3.0, 1: 0.5}, "ru", 0.875)
    assert checkpoint_from_texts([]) is None


@pytest.mark.slow
def test_a_run_resumed_from_its_steps_ends_as_an_uninterrupted_one(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:14]
    gap = np.zeros(8000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])
    path = write_audio(tmp_path / "call.wav", audio)
    options = TranscriptionOptions(language="ru", word_timestamps=True)
    steps: list[Checkpoint] = []
    whole = pipeline.run(path, options, on_checkpoint=steps.append)
    assert len(steps) >= 3, "a file this long takes several batches"
    # Each step holds only its own batch: together they are the transcript, once.
    texts = [checkpoint_to_text(s) for s in steps]
    joined = checkpoint_from_texts(texts)
    assert joined is not None
    assert sorted(s.text for s in joined.segments) == sorted(s.text for s in whole.segments)
    # What is written grows with the transcript, not with its square.
    written = sum(len(t.encode()) for t in texts)
    assert written <= 2 * len(render(whole, "json")), written

    half = checkpoint_from_texts(texts[: len(texts) // 2])
    assert half is not None and 0 < len(half.segments) < len(whole.segments)
    resumed = pipeline.run(path, options, checkpoint=half)
    assert [s.text for s in resumed.segments] == [s.text for s in whole.segments]
    assert [(s.start, s.end) for s in resumed.segments] == [
        (s.start, s.end) for s in whole.segments
    ]
    assert resumed.text == whole.text
