"""API keys: stored as sha256 hashes; a task belongs to the key that created it."""

from __future__ import annotations

import base64
import binascii
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
    """The key in an Authorization header: `Bearer KEY`, the bare key as AssemblyAI's
    clients send it, or the password of `Basic` credentials (the user name when there
    is no password). A client that can only be given a URL, such as Bazarr for
    whisper-asr-webservice, sends the key that way from `http://user:KEY@host`."""
    value = (header or "").strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    elif value.lower().startswith("basic "):
        value = _basic_key(value[6:].strip())
    return value or None


def _basic_key(credentials: str) -> str:
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return credentials  # not Basic credentials after all: refused as an unknown key
    return password or user
