"""What `transcriber models list` shows: installed packs, the cache, and the default."""

from __future__ import annotations

from pathlib import Path

from transcriber.config import Settings
from transcriber.models.packs import PACKS
from transcriber.models.resolve import MANIFEST
from transcriber.models.weights import SPEAKER_FILES


def _size(path: Path) -> str:
    total = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else 0
    return f"{total / 1e6:.0f} MB"


def describe(settings: Settings) -> list[str]:
    rows = [f"model cache: {settings.model_dir}", f"default model: {settings.model}", ""]
    for name, pack in PACKS.items():
        if not pack.installed():
            rows.append(f"  {name:<10} not installed   {pack.description}; {pack.install}")
            continue
        cached = settings.model_dir / name
        if len(pack.parts) == 1:
            where = str(pack.part_paths()[0].parent)
            state = "ready"
        elif (cached / MANIFEST).is_file():
            where, state = str(cached), "ready"
        else:
            where, state = str(cached), "installed, assembled on first use"
        mark = "*" if name == settings.model else " "
        rows.append(f"{mark} {name:<10} {state:<34} {pack.description}")
        rows.append(f"    {where} ({_size(Path(where))})")
    rows += ["", "speaker diarization (--diarize):"]
    for weights in SPEAKER_FILES:
        path = weights.locate()
        if path is None:
            rows.append(
                f"  {weights.name:<17} not installed   {weights.description}; {weights.install}"
            )
            continue
        rows.append(f"  {weights.name:<17} ready   {weights.description}")
        rows.append(f"    {path} ({path.stat().st_size / 1e6:.0f} MB)")
    hub = settings.model_dir / "hub"
    if hub.is_dir():
        for d in sorted(hub.iterdir()):
            rows.append(f"  {d.name:<10} downloaded   {d}")
    return rows
