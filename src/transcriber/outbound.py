"""Requests this service makes to URLs its clients name: media downloads and webhooks.

A client-supplied URL must not turn the service into a proxy into its own network, so
by default only public addresses are reached (`TRANSCRIBER_ALLOW_PRIVATE_URLS` lifts
this for a private deployment whose media sits on an internal server). Addresses are
checked at connect time, on the address connected to: each new connection, redirects
included, resolves the host once, is refused if any address is not public, and goes
to the checked address itself, so a DNS answer that changes after a check (DNS
rebinding) cannot reach a private one. `check_url` makes the same check early, when a
URL is submitted, for a quick answer. Messages show a URL without its query string,
which for presigned S3 URLs holds the signature.

Behind a proxy (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY, less the hosts in NO_PROXY, as
curl and pip read them) a request goes to the proxy, which resolves and connects to
the host itself. The URL's host is then checked as this machine resolves it, before
every request, redirects included; a name this machine cannot resolve is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote, urljoin, urlsplit

import anyio.to_thread
import httpcore
import httpx

from transcriber.errors import FetchError, PrivateAddressError, UploadTooLargeError

MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CHUNK = 1 << 20

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def shown(url: str) -> str:
    """`url` fit for a message: scheme, host and path; no credentials, no query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def filename_of(url: str) -> str:
    """The last path component of `url`, decoded, for the task list ("download" if none)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    # At most 200 bytes in whole characters, its extension kept: with another extension
    # added it is still a name every file system takes (255 bytes; a Cyrillic letter
    # is 2).
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 and len(name[dot:].encode()) <= 16 else ""
    stem = name[: len(name) - len(suffix)].encode()[: 200 - len(suffix.encode())]
    return (stem.decode(errors="ignore").strip() + suffix) if stem.strip() else "download"


def check_url(url: str, allow_private: bool) -> tuple[str, int]:
    """Host and port of an http(s) URL the service may call; FetchError says why not.

    An early answer only: the host may resolve differently when it is called, and the
    connection itself is checked again (`_Backend`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{shown(url) if parts.scheme else url[:80]!r} is not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"{shown(url)}: the port is not a valid number") from None
    if not allow_private:
        try:
            addresses = _resolve(parts.hostname, port)
        except OSError:
            raise FetchError(f"{shown(url)}: the host {parts.hostname!r} is not known") from None
        if (address := _first_private(addresses)) is not None:
            raise _Private(parts.hostname, address).error(url)
    return parts.hostname, port


def _resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to for TCP, each once, in the resolver's order (an
    IPv6 one with its zone, as in "fe80::1%2", where it has one)."""
    addresses: dict[str, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        zone = sockaddr[3] if len(sockaddr) == 4 else 0
        addresses[f"{sockaddr[0]}%{zone}" if zone else str(sockaddr[0])] = None
    return list(addresses)


def _first_private(addresses: Iterable[str]) -> IPAddress | None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address.is_global:
            return address
    return None


class _Private(Exception):
    """A host resolved to a private address; the transports turn it into a FetchError
    that names the URL (the backend sees only host and port)."""

    def __init__(self, host: str, address: IPAddress) -> None:
        super().__init__(host, address)
        self.host, self.address = host, address

    def error(self, url: str) -> FetchError:
        return PrivateAddressError(
            f"{shown(url)}: {self.host} is a private address ({self.address}), which this"
            " service does not call; set TRANSCRIBER_ALLOW_PRIVATE_URLS=true to allow it"
        )


def _addresses_to_connect(host: str, port: int, allow_private: bool) -> list[str]:
    """`host` resolved once; all of it public unless private addresses are allowed."""
    try:
        addresses = _resolve(host, port)
    except OSError as e:  # as httpcore reports it, so it reads "could not be reached"
        raise httpcore.ConnectError(str(e)) from e
    if not allow_private and (address := _first_private(addresses)) is not None:
        raise _Private(host, address)
    return addresses


# The backends connect to the checked address, never to the name, so nothing resolves it
# again. TLS still verifies the certificate against the name: httpcore hands the URL's
# host to `start_tls` as `server_hostname`, apart from the address given here. Like
# `socket.create_connection`, each address is tried in turn until one answers.


class _Backend(httpcore.SyncBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        *others, last = _addresses_to_connect(host, port, self.allow_private)
        for address in others:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
        return super().connect_tcp(last, port, timeout, local_address, socket_options)


class _AsyncBackend(httpcore.AnyIOBackend):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        *others, last = await anyio.to_thread.run_sync(
            _addresses_to_connect, host, port, self.allow_private, abandon_on_cancel=True
        )
        for address in others:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await super().connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
        return await super().connect_tcp(last, port, timeout, local_address, socket_options)


# httpx's transports take no network backend, so these replace the connection pool that
# httpx would build (`_pool`, in httpx 0.27 and 0.28) with one that connects through the
# backends above; httpx's request conversion and error mapping are kept as they are.


class _Transport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_Backend(allow_private)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except _Private as e:
            raise e.error(str(request.url)) from None


class _AsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self, allow_private: bool) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_AsyncBackend(allow_private)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except _Private as e:
            raise e.error(str(request.url)) from None


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`, or None; FetchError for a kind of proxy
    this service cannot speak to."""
    proxies = urllib.request.getproxies_environment()
    host = urlsplit(url).hostname or ""
    # NO_PROXY as urllib reads it: names, domain suffixes, addresses, "*"; typeshed lacks it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or bypass(host, proxies):
        return None
    proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
    if proxy is None:
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"  # as curl reads a bare host:port
    if urlsplit(proxy).scheme not in ("http", "https"):
        raise FetchError(
            f"the proxy {shown(proxy)} set for {shown(url)} is not one this service can use:"
            " only http and https proxies are supported"
        )
    return proxy


def _transport(url: str, allow_private: bool) -> httpx.BaseTransport:
    proxy = proxy_for(url)
    if proxy is None:
        return _Transport(allow_private)
    return httpx.HTTPTransport(proxy=proxy)


def _async_transport(url: str, allow_private: bool) -> httpx.AsyncBaseTransport:
    proxy = proxy_for(url)
    if proxy is None:
        return _AsyncTransport(allow_private)
    return httpx.AsyncHTTPTransport(proxy=proxy)


async def download(url: str, limit: int, allow_private: bool) -> AsyncIterator[bytes]:
    """The body of `url` in chunks, following redirects; FetchError or UploadTooLargeError."""
    for _ in range(MAX_REDIRECTS + 1):
        await asyncio.to_thread(check_url, url, allow_private)
        # trust_env=False: the proxy is chosen here, per URL (a redirect may need another
        # or none); and .netrc is not read.
        async with httpx.AsyncClient(
            transport=_async_transport(url, allow_private),
            trust_env=False,
            timeout=TIMEOUT,
            follow_redirects=False,
        ) as client:
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
                                f"{shown(url)} is larger than the limit of {limit / 1e6:g} MB"
                            )
                        yield block
                    return
            except httpx.HTTPError as e:
                raise FetchError(
                    f"{shown(url)}{_via(url)} could not be downloaded: {_reason(e)}"
                ) from None
    raise FetchError(f"{shown(url)} redirects more than {MAX_REDIRECTS} times")


def post_json(
    url: str, body: object, headers: dict[str, str], allow_private: bool, timeout: float = 10.0
) -> int:
    """POST `body` as JSON (bytes are sent as they are: already JSON, and signed) without
    following redirects; the HTTP status, 0 if unreachable."""
    try:
        check_url(url, allow_private)
        # trust_env=False: the proxy is chosen per URL, as in `download`.
        with httpx.Client(
            transport=_transport(url, allow_private), trust_env=False, timeout=timeout
        ) as client:
            if isinstance(body, bytes):
                kind = {"content-type": "application/json"}
                r = client.post(url, content=body, headers=kind | headers, follow_redirects=False)
            else:
                r = client.post(url, json=body, headers=headers, follow_redirects=False)
    except (FetchError, httpx.HTTPError):
        return 0
    return r.status_code


def _via(url: str) -> str:
    proxy = proxy_for(url)
    return "" if proxy is None else f" (through the proxy {shown(proxy)})"


def _reason(e: httpx.HTTPError) -> str:
    if isinstance(e, httpx.TimeoutException):
        return "it timed out"
    if isinstance(e, httpx.ProxyError):
        return "the proxy refused it"
    if isinstance(e, httpx.ConnectError):
        return "the server could not be reached"
    return type(e).__name__
