"""Model resolution: local path, model cache, installed model packs, then the hub."""

from transcriber.models.packs import PACKS, Pack
from transcriber.models.resolve import ResolvedModel, canonical, ensure_pack, resolve

__all__ = ["PACKS", "Pack", "ResolvedModel", "canonical", "ensure_pack", "resolve"]
