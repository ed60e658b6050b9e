"""API keys: stored as sha256 hashes; a task belongs to the key that created it."""

from __future__ import annotations

import hashlib
import secrets

from transcriber.errors import AuthError
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.usage import Quota

OPEN_OWNER = ""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "vt_" + secrets.token_urlsafe(32)


def create_key(jobs: SqlJobStore, name: str, quota: Quota | None = None) -> str:
    key = new_key()
    digest = hash_key(key)
    jobs.add_key(digest[:16], name, digest, quota)
    return key


def owner_for(jobs: SqlJobStore, configured: list[str], key: str | None) -> str:
    """The owner id of a request, or AuthError. With no keys anywhere, everyone is one owner."""
    if not configured and not jobs.has_keys():
        return OPEN_OWNER
    if not key:
        raise AuthError("this service needs an API key: send 'Authorization: Bearer KEY'")
    digest = hash_key(key)
    if any(secrets.compare_digest(digest, hash_key(k)) for k in configured):
        return digest[:16]
    if jobs.find_key(digest) is not None:
        return digest[:16]
    raise AuthError("unknown API key")


def bearer(header: str | None) -> str | None:
    """The key in an Authorization header: `Bearer KEY`, or the bare key as AssemblyAI's
    clients send it."""
    value = (header or "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None
