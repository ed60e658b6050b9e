"""Requests this service makes to URLs its clients name: media downloads and webhooks.

A client-supplied URL must not turn the service into a proxy into its own network, so
by default only public addresses are reached: every address the host name resolves to
is checked, at each redirect too (`TRANSCRIBER_ALLOW_PRIVATE_URLS` lifts this for a
private deployment whose media sits on an internal server). Messages show a URL without
its query string, which for presigned S3 URLs holds the signature.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from transcriber.errors import FetchError, UploadTooLargeError

MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CHUNK = 1 << 20


def shown(url: str) -> str:
    """`url` fit for a message: scheme, host and path; no credentials, no query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def filename_of(url: str) -> str:
    """The last path component of `url`, decoded, for the task list ("download" if none)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    return name[:200] or "download"


def check_url(url: str, allow_private: bool) -> tuple[str, int]:
    """Host and port of an http(s) URL the service may call; FetchError says why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{shown(url) if parts.scheme else url[:80]!r} is not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"{shown(url)}: the port is not a valid number") from None
    if not allow_private:
        _check_public(parts.hostname, port, url)
    return parts.hostname, port


def _check_public(host: str, port: int, url: str) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise FetchError(f"{shown(url)}: the host {host!r} is not known") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise FetchError(
                f"{shown(url)}: {host} is a private address ({address}), which this service"
                " does not call; set TRANSCRIBER_ALLOW_PRIVATE_URLS=true to allow it"
            )


async def download(url: str, limit: int, allow_private: bool) -> AsyncIterator[bytes]:
    """The body of `url` in chunks, following redirects; FetchError or UploadTooLargeError."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await asyncio.to_thread(check_url, url, allow_private)
            try:
                async with client.stream("GET", url) as r:
                    if r.is_redirect and "location" in r.headers:
                        url = urljoin(url, r.headers["location"])
                        continue
                    if r.status_code != 200:
                        raise FetchError(f"{shown(url)} answered HTTP {r.status_code}")
                    size = 0
                    async for block in r.aiter_bytes(CHUNK):
                        size += len(block)
                        if size > limit:
                            raise UploadTooLargeError(
                                f"{shown(url)} is larger than the limit of {limit / 1e6:.0f} MB"
                            )
                        yield block
                    return
            except httpx.HTTPError as e:
                raise FetchError(f"{shown(url)} could not be downloaded: {_reason(e)}") from None
        raise FetchError(f"{shown(url)} redirects more than {MAX_REDIRECTS} times")


def post_json(
    url: str, body: object, headers: dict[str, str], allow_private: bool, timeout: float = 10.0
) -> int:
    """POST `body` as JSON without following redirects; the HTTP status, 0 if unreachable."""
    try:
        check_url(url, allow_private)
        r = httpx.post(url, json=body, headers=headers, timeout=timeout, follow_redirects=False)
    except (FetchError, httpx.HTTPError):
        return 0
    return r.status_code


def _reason(e: httpx.HTTPError) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "it timed out"
    if isinstance(e, httpx.ConnectError):
        return "the server could not be reached"
    return type(e).__name__
