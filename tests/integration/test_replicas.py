"""Model copies decode batches at the same time, and the transcript does not change."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_audio
from transcriber.config import Settings
from transcriber.domain import TranscriptionOptions
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow


class ConcurrencyProbe:
    """The CTranslate2 model, noting how many generate calls run at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.running = self.most = self.calls = 0
        self.threads: set[str] = set()

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            return self.inner.generate(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run_probed(
    settings: Settings, path: Path, language: str | None
) -> tuple[Any, ConcurrencyProbe]:
    pipeline = Pipeline(settings)
    with pipeline.engines.use() as engine:
        probe = ConcurrencyProbe(engine.model.model)  # type: ignore[attr-defined]
        engine.model.model = probe  # type: ignore[attr-defined]
        return pipeline.run(path, TranscriptionOptions(language=language)), probe


def test_two_copies_decode_at_once_and_agree_with_one(
    model_cache: Path, eval_root: Path, tmp_path: Path
) -> None:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:10]
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])
    path = write_audio(tmp_path / "ru_clips.wav", audio)
    base = {"model_dir": model_cache, "batch_size": 1, "cpu_threads": 2, "_env_file": None}

    one, single = run_probed(Settings(replicas=1, **base), path, "ru")
    # The language is detected too: the first window's kept encoding goes to a copy.
    two, double = run_probed(Settings(replicas=2, **base), path, None)

    assert single.calls >= 3 and single.most == 1
    assert double.most == 2 and len(double.threads) == 2
    assert two.language == "ru"
    assert two.text == one.text
    assert [(s.start, s.end) for s in two.segments] == [(s.start, s.end) for s in one.segments]
