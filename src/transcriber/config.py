"""Settings from the environment (prefix `TRANSCRIBER_`, `__` for nesting) and `.env`.

Every field has a docstring; `docs/configuration.md` lists them all and a test
keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video-transcriber"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRANSCRIBER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    model: str = "base"
    """Default model: a name (`base`, `tiny.en`, or any faster-whisper name) or a folder path."""

    model_dir: Path = Field(default_factory=lambda: _default_cache() / "models")
    """Cache folder where installed model packs are assembled and downloads are kept."""

    device: str = "cpu"
    """CTranslate2 device: `cpu`, `cuda` or `auto`."""

    compute_type: str = "int8"
    """CTranslate2 compute type, e.g. `int8`, `int8_float16`, `float16`, `float32`."""

    cpu_threads: int = Field(default=0, ge=0)
    """Threads for inference; 0 means one per CPU core available to the process."""

    batch_size: int = Field(default=8, ge=1, le=64)
    """How many ~30 s speech windows are decoded together in one batch."""

    beam_size: int = Field(default=5, ge=1, le=10)
    """Default beam width when a request does not set one."""

    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Silero VAD speech probability above which a 32 ms frame counts as speech."""

    vad_min_silence_ms: int = Field(default=1000, ge=0)
    """Silence shorter than this does not end a speech region."""

    vad_speech_pad_ms: int = Field(default=400, ge=0)
    """Padding added on each side of a speech region."""

    model_idle_ttl_s: float = Field(default=600.0, ge=0)
    """Unload a loaded model after this many idle seconds (0 keeps it loaded)."""

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if v not in {"cpu", "cuda", "auto"}:
            raise ValueError("device must be cpu, cuda or auto")
        return v

    def threads(self) -> int:
        if self.cpu_threads:
            return self.cpu_threads
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - non-Linux
            return max(1, os.cpu_count() or 1)
