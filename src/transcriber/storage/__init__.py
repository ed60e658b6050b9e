"""Storage backends, picked from `TRANSCRIBER_STORAGE_URL`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from transcriber.errors import OptionError
from transcriber.storage.base import Store
from transcriber.storage.local import LocalStore


def from_url(url: str, default_endpoint: str = "") -> Store:
    """The store `url` names: `file://FOLDER` or `s3://BUCKET/PREFIX?endpoint_url=&region=`.

    `default_endpoint` is the S3 endpoint when the URL names none (empty: AWS).
    """
    parsed = urlparse(url)
    if parsed.scheme in ("file", ""):
        raw = url[len("file://") :] if url.startswith("file://") else url
        return LocalStore(Path(raw))
    if parsed.scheme == "s3":
        from transcriber.storage.s3 import S3Store  # imports boto3 only when used

        return S3Store.from_url(url, default_endpoint)
    raise OptionError(
        f"unsupported storage URL {url!r}; use file:///path/to/folder or s3://bucket/prefix"
    )


__all__ = ["LocalStore", "Store", "from_url"]
