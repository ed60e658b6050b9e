"""Detecting the language costs no extra encoder pass: the first batch's encoding is reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_audio
from transcriber.domain import TranscriptionOptions
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow


class CountingEncoder:
    """The CTranslate2 model, counting the windows that go through its encoder."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.windows = 0

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.windows += features.shape[0]
        return self.inner.encode(features, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_auto_language_encodes_each_window_once(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:12]
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])
    path = write_audio(tmp_path / "ru_clips.wav", audio)
    with pipeline.engines.use() as engine:  # held, so it is the one both runs use
        counter = CountingEncoder(engine.model.model)  # type: ignore[attr-defined]
        monkeypatch.setattr(engine.model, "model", counter)  # type: ignore[attr-defined]

        given = pipeline.run(path, TranscriptionOptions(language="ru"))
        with_language = counter.windows
        counter.windows = 0
        detected = pipeline.run(path, TranscriptionOptions(language=None))

    assert detected.language == "ru" and (detected.language_probability or 0) > 0.5
    assert with_language >= 2  # more than one window: the reuse is not trivial
    assert counter.windows == with_language
    assert detected.text == given.text
