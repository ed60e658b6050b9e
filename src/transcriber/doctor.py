"""`transcriber doctor`: check the installation and say in plain words what to fix."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transcriber.config import Settings

REQUIRED = ["faster-whisper", "ctranslate2", "onnxruntime", "onnx", "av", "numpy", "python-docx"]
MIN_FREE_GB = 1.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> Iterator[Check]:
    yield _python()
    yield from _packages()
    yield _model(settings)
    yield from _speaker_models()
    yield _decoding()
    yield _disk(settings.model_dir)
    yield from _backends(settings)


def _backends(settings: Settings) -> Iterator[Check]:
    """The scale-out servers, when settings name them: can this machine reach each?"""
    from transcriber.errors import TranscriberError

    def database() -> str:
        from sqlalchemy import text

        from transcriber.jobs.database import describe, make_engine, reachable

        engine = make_engine(settings.db_url())
        try:
            with reachable(engine), engine.connect() as c:
                c.execute(text("select 1"))
            return describe(engine.url)
        finally:
            engine.dispose()

    def storage() -> str:
        from transcriber.storage import from_url

        from_url(settings.storage_url, settings.s3_endpoint_url).check()
        return settings.storage_url

    def queue() -> str:
        from transcriber.jobs.queue.celery import CeleryQueue, safe_url

        q = CeleryQueue(settings.queue_url)
        try:
            q.check()
        finally:
            q.stop()
        return safe_url(settings.queue_url)

    named = {
        "database": bool(settings.database_url),
        "storage": not settings.storage_url.startswith("file:"),
        "queue": not settings.queue_url.startswith("embedded:"),
    }
    for name, probe in (("database", database), ("storage", storage), ("queue", queue)):
        if not named[name]:
            continue
        try:
            yield Check(name, True, f"reachable: {probe()}")
        except TranscriberError as e:
            yield Check(name, False, e.message)


def _python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    hint = "" if ok else "; install Python 3.11 or newer"
    return Check("python", ok, f"{v.major}.{v.minor}.{v.micro}{hint}")


def _packages() -> Iterator[Check]:
    for name in REQUIRED:
        try:
            yield Check(f"package {name}", True, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            yield Check(f"package {name}", False, f"missing; run: pip install {name}")


def _model(settings: Settings) -> Check:
    from transcriber.errors import TranscriberError
    from transcriber.models import resolve

    try:
        found = resolve(settings.model, settings.model_dir)
    except TranscriberError as e:
        return Check("model", False, e.message)
    if found.path is None:
        return Check("model", True, f"{found.name} will be downloaded from the hub on first use")
    return Check("model", True, f"{found.name} at {found.path}")


def _speaker_models() -> Iterator[Check]:
    """The diarization weights (needed only with --diarize): installed and unaltered?"""
    from transcriber.errors import TranscriberError
    from transcriber.models.weights import SPEAKER_FILES, verified_path

    for weights in SPEAKER_FILES:
        name = f"speaker model {weights.name}"
        try:
            yield Check(name, True, str(verified_path(weights)))
        except TranscriberError as e:
            yield Check(name, False, f"{e.message.splitlines()[0]} Run: {weights.install}")


def _decoding() -> Check:
    import numpy as np

    from transcriber.errors import TranscriberError
    from transcriber.media import stream_audio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tone.wav"
        t = np.arange(8000) / 8000
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm.tobytes())
        try:
            n = sum(len(c) for c in stream_audio(path))
        except TranscriberError as e:
            return Check("decoding", False, f"{e.message}; reinstall PyAV: pip install av")
    ok = abs(n - 16000) < 160
    return Check("decoding", ok, "PyAV decodes and resamples to 16 kHz" if ok else f"{n} samples")


def _disk(model_dir: Path) -> Check:
    probe = model_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    ok = free >= MIN_FREE_GB
    hint = "" if ok else f"; free at least {MIN_FREE_GB:.0f} GB for models and uploads"
    return Check("disk", ok, f"{free:.1f} GB free at {probe}{hint}")
