"""Storage backends, picked from `TRANSCRIBER_STORAGE_URL`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from transcriber.errors import OptionError
from transcriber.storage.base import Store
from transcriber.storage.local import LocalStore


def from_url(url: str) -> Store:
    parsed = urlparse(url)
    if parsed.scheme in ("file", ""):
        raw = url[len("file://") :] if url.startswith("file://") else url
        return LocalStore(Path(raw))
    raise OptionError(f"unsupported storage URL {url!r}; use file:///path/to/folder")


__all__ = ["LocalStore", "Store", "from_url"]
