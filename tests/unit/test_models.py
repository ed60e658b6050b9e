"""Model packs are joined once, checked, and renamed into place atomically."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from transcriber.errors import ModelNotFoundError
from transcriber.models import PACKS, ensure_pack, resolve
from transcriber.models.packs import recorded_sha256, sha256_file
from transcriber.models.resolve import MANIFEST


def test_parts_have_recorded_checksums() -> None:
    for part in PACKS["base"].parts:
        digest = recorded_sha256(part)
        assert digest is not None and len(digest) == 64


def test_concurrent_assembly_gives_one_whole_model(tmp_path: Path) -> None:
    pack = PACKS["base"]
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(ensure_pack(pack, tmp_path))
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(results) == {tmp_path / "base"}
    model = tmp_path / "base"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"], "no temp folders left"
    joined = hashlib.sha256()
    for part in pack.part_paths():
        joined.update(part.read_bytes())
    assert sha256_file(model / "model.bin") == joined.hexdigest()
    assert joined.hexdigest() in (model / MANIFEST).read_text()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (model / name).stat().st_size > 0


def test_resolve_names_paths_and_hub(tmp_path: Path) -> None:
    tiny = resolve("tiny.en", tmp_path)
    assert tiny.source == "pack" and tiny.path is not None
    assert (tiny.path / "model.bin").is_file()
    assert resolve(str(tiny.path), tmp_path).source == "path"
    assert resolve("large-v3", tmp_path).source == "hub"
    with pytest.raises(ModelNotFoundError, match=r"no model\.bin"):
        resolve(str(tmp_path), tmp_path)
