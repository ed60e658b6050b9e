"""Calls to client-given URLs: the address policy, downloads and webhook delivery,
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.servers.receiver import Receiver
from transcriber.errors import FetchError, OptionError, UploadTooLargeError
from transcriber.jobs.webhooks import make_webhook
from transcriber.outbound import check_url, download, filename_of, post_json, shown


def test_urls_are_shown_without_their_query() -> None:
    signed = "https://user:pw@bucket.s3.amazonaws.com/a%20b.mp3?X-Amz-Signature=abc"
    assert shown(signed) == "https://bucket.s3.amazonaws.com/a%20b.mp3"
    assert filename_of(signed) == "a b.mp3"
    assert filename_of("https://host/") == "download"
    long = filename_of("https://host/" + quote("Ж" * 130) + ".wav")  # 264 bytes
    assert long == "Ж" * 98 + ".wav" and len(long.encode()) <= 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/a.mp3", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("just text", "not an http(s) URL"),
        ("http://127.0.0.1:8086/api/tasks", "private address (127.0.0.1)"),
        ("http://localhost/x", "private address"),
        ("http://10.1.2.3/a.wav", "private address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data", "private address (169.254.169.254)"),
        ("http://[::1]/a.wav", "private address (::1)"),
        ("http://host.invalid/a.wav", "is not known"),
        ("http://example.org:99999/a.wav", "port is not a valid number"),
    ],
)
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, allow_private=False)


def test_private_addresses_allowed_when_configured() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True) == ("127.0.0.1", 9)


async def _collect(url: str, limit: int) -> bytes:
    return b"".join([block async for block in download(url, limit, allow_private=True)])


def test_download_streams_and_enforces_limit_and_status(receiver: Receiver, tmp_path: Path) -> None:
    media = tmp_path / "m.bin"
    media.write_bytes(b"x" * 3_000_000)
    receiver.files["m.bin"] = media
    assert asyncio.run(_collect(f"{receiver.url}/m.bin?sig=1", 10_000_000)) == media.read_bytes()
    with pytest.raises(UploadTooLargeError, match="larger than the limit of 1 MB"):
        asyncio.run(_collect(f"{receiver.url}/m.bin", 1_000_000))
    with pytest.raises(FetchError, match=r"/gone.mp3 answered HTTP 404"):
        asyncio.run(_collect(f"{receiver.url}/gone.mp3?X-Amz-Signature=secret", 10))
    with pytest.raises(FetchError, match="could not be downloaded: the server could not be"):
        asyncio.run(_collect("http://127.0.0.1:9/none.mp3", 10))
    with pytest.raises(FetchError, match="private address"):  # the policy holds for downloads
        asyncio.run(anext(download(f"{receiver.url}/m.bin", 10, allow_private=False)))


class FakeDNS:
    """`socket.getaddrinfo` answering some names itself: each resolution of a name takes
    the next answer of its list (the last one stays); other names resolve as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.asked: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.asked.append(name)
        script = self.answers[name]
        addresses = script.pop(0) if len(script) > 1 else script[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port), 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port)))
            for a in addresses
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Names answered here, and no proxy: these tests are of connections the service
    opens itself (through a proxy, the proxy resolves the name)."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return FakeDNS(monkeypatch)


def test_a_name_rebound_to_a_private_address_after_the_check_is_refused(
    receiver: Receiver, dns: FakeDNS, tmp_path: Path
) -> None:
    """DNS rebinding: the early check sees a public address, the connection would get
    the local server. The connection is checked itself, so it never gets there."""
    media = tmp_path / "m.bin"
    media.write_bytes(b"secret")
    receiver.files["m.bin"] = media
    port = receiver.url.rsplit(":", 1)[1]
    refused = r"rebind\.test is a private address \(127\.0\.0\.1\), which this service"

    dns.answers["rebind.test"] = [["93.184.216.34"], ["127.0.0.1"]]
    chunks = download(f"http://rebind.test:{port}/m.bin?sig=x", 100, allow_private=False)
    with pytest.raises(FetchError, match=rf"^http://rebind\.test:{port}/m\.bin: {refused}"):
        asyncio.run(anext(chunks))
    assert dns.asked == ["rebind.test"] * 2  # the early check, then the connection

    dns.answers["rebind.test"] = [["93.184.216.34"], ["93.184.216.34", "127.0.0.1"]]
    url = f"http://rebind.test:{port}/hook"
    assert post_json(url, {"a": 1}, {}, allow_private=False) == 0
    assert receiver.received == []


def test_a_name_is_called_at_the_address_it_resolved_to_when_private_is_allowed(
    receiver: Receiver, dns: FakeDNS, tmp_path: Path
) -> None:
    media = tmp_path / "m.bin"
    media.write_bytes(b"media")
    receiver.files["m.bin"] = media
    port = receiver.url.rsplit(":", 1)[1]
    # ::1 does not answer (the server is on 127.0.0.1 only), so the next address is tried
    dns.answers["media.test"] = [["::1", "127.0.0.1"]]
    assert asyncio.run(_collect(f"http://media.test:{port}/m.bin", 100)) == b"media"
    assert post_json(f"http://media.test:{port}/hook", {"a": 1}, {}, allow_private=True) == 200
    assert receiver.received[0].headers["host"] == f"media.test:{port}"
    assert dns.asked == ["media.test"] * 2  # once for each connection, by the service


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 whose certificate names media.test (and is trusted
    here through SSL_CERT_FILE); GET and POST answer b"tls". Its port."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl (apt install openssl) is missing in CI")
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=media.test",
         "-addext", "subjectAltName=DNS:media.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "3")
            self.end_headers()
            self.wfile.write(b"tls")

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_tls_is_verified_against_the_name_not_the_address(tls_server: int, dns: FakeDNS) -> None:
    dns.answers["media.test"] = [["127.0.0.1"]]
    dns.answers["other.test"] = [["127.0.0.1"]]
    assert asyncio.run(_collect(f"https://media.test:{tls_server}/a", 100)) == b"tls"
    assert post_json(f"https://media.test:{tls_server}/h", {}, {}, allow_private=True) == 200
    unverified = rf"^https://other\.test:{tls_server}/a could not be downloaded: the server"
    with pytest.raises(FetchError, match=unverified):
        asyncio.run(_collect(f"https://other.test:{tls_server}/a", 100))
    assert post_json(f"https://other.test:{tls_server}/h", {}, {}, allow_private=True) == 0


def test_webhook_fields_are_checked() -> None:
    assert make_webhook(None, False) is None
    with pytest.raises(FetchError, match="private address"):
        make_webhook("http://127.0.0.1/hook", allow_private=False)
    with pytest.raises(OptionError, match="plain header name"):
        make_webhook("http://127.0.0.1/hook", True, "X Bad\n", "v")
    with pytest.raises(OptionError, match="one line of printable ASCII"):
        make_webhook("http://127.0.0.1/hook", True, "X-Key", "a\r\nX-Evil: 1")
    with pytest.raises(OptionError, match="comes with webhook_auth_header_value"):
        make_webhook("http://127.0.0.1/hook", True, "X-Key", None)


@pytest.mark.parametrize(
    "name", ["Content-Length", "host", "Transfer-Encoding", "CONNECTION", "Content-Type",
             "Expect", "webhook-signature"],
)  # fmt: skip
def test_webhook_auth_header_may_not_be_one_the_service_sets(name: str) -> None:
    with pytest.raises(OptionError, match=f"{name}' cannot be used: the service sets that"):
        make_webhook("http://127.0.0.1/hook", True, name, "9999")


def test_webhook_auth_header_must_be_sendable() -> None:
    hook = "http://127.0.0.1/hook"
    for name in ("X Key", "X-Key:", "Ключ", "", "X(Key)"):
        with pytest.raises(OptionError, match="is not a plain header name"):
            make_webhook(hook, True, name, "v")
    for value in ("a\rb", "a\nb", "a\x00b", "a\x01b", "пароль", "é"):
        with pytest.raises(OptionError, match="one line of printable ASCII"):
            make_webhook(hook, True, "X-Key", value)
    with pytest.raises(OptionError, match="comes with webhook_auth_header_value"):
        make_webhook(hook, True, None, "s3cr3t")
    for name, value in (("X-Key", None), (None, "s3cr3t"), ("X-Key", "s3cr3t")):
        with pytest.raises(OptionError, match="need webhook_url"):
            make_webhook(None, True, name, value)
    # Any token is a header name; spaces around a value are not part of it in HTTP.
    sent = make_webhook(hook, True, "X-Api.Key~1", "  s3 cr3t\t")
    assert sent is not None and sent.headers() == {"X-Api.Key~1": "s3 cr3t"}
