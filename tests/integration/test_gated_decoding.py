"""Greedy first, the beam only where the words are unsure: on real Russian speech."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_audio
from transcriber.config import Settings
from transcriber.domain import Transcript, TranscriptionOptions
from transcriber.evaluation.wer import corpus_wer
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow


class ModelProbe:
    """The CTranslate2 model, counting windows through the encoder and through
    `generate` at each beam width."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.encoded = 0
        self.decoded: Counter[int] = Counter()

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.encoded += features.shape[0]
        return self.inner.encode(features, *args, **kwargs)

    def generate(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.decoded[kwargs["beam_size"]] += features.shape[0]
        return self.inner.generate(features, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def russian(eval_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Twenty Russian dev clips joined with a second of silence: several windows."""
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:20]
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])
    path = write_audio(tmp_path_factory.mktemp("gated") / "ru_clips.wav", audio)
    return path, " ".join(r["text"] for r in rows)


def run_probed(
    model_cache: Path, decoding: str, path: Path, beam: int = 5
) -> tuple[Transcript, ModelProbe]:
    settings = Settings(model_dir=model_cache, decoding=decoding, _env_file=None)  # type: ignore[call-arg]
    pipeline = Pipeline(settings)
    with pipeline.engines.use() as engine:  # held, so it is the one the run uses
        probe = ModelProbe(engine.model.model)  # type: ignore[attr-defined]
        engine.model.model = probe  # type: ignore[attr-defined]
        return pipeline.run(path, TranscriptionOptions(language="ru", beam_size=beam)), probe


def test_only_the_unsure_windows_go_to_the_beam(
    model_cache: Path, russian: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    path, reference = russian
    with caplog.at_level(logging.INFO, logger="transcriber.engines.whisper"):
        gated, probe = run_probed(model_cache, "gated", path)
    said = [r.getMessage() for r in caplog.records if "greedy windows" in r.getMessage()]
    assert len(said) == 1, said
    found = re.match(r"(\d+) of (\d+) greedy windows", said[0])
    assert found, said[0]
    sent, windows = int(found[1]), int(found[2])

    # Every window (and every skipped stretch decoded again) goes through greedy search
    # once; the beam sees only the windows the gate doubted, and it doubted some but
    # not all of them.
    assert probe.decoded[1] == windows >= 4
    assert probe.decoded[5] == sent
    assert 0 < sent < windows
    assert set(probe.decoded) == {1, 5}
    # No window is encoded twice: one encoder pass per window, beam or not.
    assert probe.encoded == windows

    # Full beam (the setting) and greedy (beam width 1): one pass each, at one width.
    beam, full = run_probed(model_cache, "beam", path)
    assert set(full.decoded) == {5} and full.decoded[5] == full.encoded >= 4
    greedy, plain = run_probed(model_cache, "gated", path, beam=1)
    assert set(plain.decoded) == {1} and plain.decoded[1] == plain.encoded >= 4

    wers = {name: corpus_wer([(reference, t.text)], "ru")
            for name, t in (("greedy", greedy), ("gated", gated), ("beam", beam))}  # fmt: skip
    print(f"\nWER {wers}; {sent} of {windows} windows to the beam")
    assert wers["gated"] <= wers["greedy"]
    assert wers["gated"] <= wers["beam"] + 0.02
