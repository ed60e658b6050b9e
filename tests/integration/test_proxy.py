"""Outbound requests (media downloads by URL, webhooks) through the proxy that the
environment names, as curl and pip read it: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY.
The proxy is a real tinyproxy, which marks what it forwards with a Via header."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import cli
from tests.servers.proxy import _free_port
from tests.servers.receiver import Receiver
from transcriber.errors import FetchError
from transcriber.outbound import download, post_json

_NAMES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in _NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield monkeypatch


@pytest.fixture
def proxied(no_proxy_env: pytest.MonkeyPatch, tinyproxy: str) -> str:
    no_proxy_env.setenv("HTTP_PROXY", tinyproxy)
    return tinyproxy


def fetch(url: str, allow_private: bool = True) -> bytes:
    async def go() -> bytes:
        return b"".join([b async for b in download(url, 10_000_000, allow_private)])

    return asyncio.run(go())


def _media(receiver: Receiver, tmp_path: Path) -> tuple[str, bytes]:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(300_000))
    receiver.files["a.bin"] = path
    return f"{receiver.url}/a.bin", path.read_bytes()


def test_downloads_and_webhooks_go_through_the_proxy(
    proxied: str, receiver: Receiver, tmp_path: Path
) -> None:
    url, data = _media(receiver, tmp_path)
    assert fetch(url) == data
    (got,) = receiver.gets
    assert "tinyproxy" in got.headers.get("via", ""), got.headers
    assert post_json(f"{receiver.url}/hook", {"id": "t1"}, {"x-sign": "s"}, True) == 200
    (hook,) = receiver.received
    assert hook.body == {"id": "t1"} and hook.headers["x-sign"] == "s"
    assert "tinyproxy" in hook.headers.get("via", ""), hook.headers


def test_hosts_in_no_proxy_are_called_directly(
    proxied: str, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    url, data = _media(receiver, tmp_path)
    assert fetch(url) == data
    assert post_json(f"{receiver.url}/hook", {"id": "t2"}, {}, True) == 200
    assert "via" not in receiver.gets[0].headers and "via" not in receiver.received[0].headers


def test_a_private_address_is_refused_before_the_proxy_is_asked(
    proxied: str, receiver: Receiver, tmp_path: Path
) -> None:
    url, _ = _media(receiver, tmp_path)
    with pytest.raises(FetchError, match=r"private address \(127\.0\.0\.1\)"):
        fetch(url, allow_private=False)
    assert post_json(f"{receiver.url}/hook", {"id": "t3"}, {}, False) == 0
    assert receiver.gets == [] and receiver.received == []


def test_a_proxy_that_is_down_or_unusable_is_named(
    no_proxy_env: pytest.MonkeyPatch, receiver: Receiver, tmp_path: Path
) -> None:
    url, _ = _media(receiver, tmp_path)
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{_free_port()}")
    down = r"\(through the proxy http://127\.0\.0\.1:\d+\) could not be downloaded"
    with pytest.raises(FetchError, match=down):
        fetch(url)
    assert post_json(f"{receiver.url}/hook", {}, {}, True) == 0
    no_proxy_env.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(FetchError, match="only http and https proxies"):
        fetch(url)
    assert receiver.gets == [] and receiver.received == []


@pytest.mark.slow
def test_the_cli_downloads_media_through_the_proxy(
    proxied: str, receiver: Receiver, eval_root: Path, tmp_path: Path, model_cache: Path
) -> None:
    receiver.files["jfk.flac"] = eval_root / "en/whisper/jfk.flac"
    out = tmp_path / "out"
    r = cli(
        "transcribe", f"{receiver.url}/jfk.flac", "--language", "en", "--format", "txt",
        "--output-dir", str(out),
        env_extra={"TRANSCRIBER_MODEL_DIR": str(model_cache), "HTTP_PROXY": proxied},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "fellow americans" in (out / "jfk.txt").read_text().lower()
    assert "tinyproxy" in receiver.gets[0].headers.get("via", "")
