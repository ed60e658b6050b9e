"""Picking a Store from TRANSCRIBER_STORAGE_URL, and the byte ranges of the media route."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transcriber.api.ranges import RangeNotSatisfiable, parse_range
from transcriber.errors import MissingExtraError, OptionError, UnavailableError
from transcriber.storage import LocalStore, from_url
from transcriber.storage.s3 import DOWNLOADS, S3Store, sweep_downloads


def test_file_urls_give_a_local_store(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}/a", str(tmp_path / "a")):
        store = from_url(url)
        assert isinstance(store, LocalStore) and store.root == tmp_path / "a"


def test_s3_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    store = from_url("s3://media/svc/eu?endpoint_url=http://127.0.0.1:8333&region=us-east-1")
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("media", "svc/eu/")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:8333"
    assert store.client.meta.region_name == "us-east-1"
    assert store.where == "s3://media/svc/eu/ at http://127.0.0.1:8333"

    bare = from_url("s3://media", default_endpoint="http://seaweed:8333")
    assert isinstance(bare, S3Store) and (bare.bucket, bare.prefix) == ("media", "")
    assert bare.client.meta.endpoint_url == "http://seaweed:8333"
    assert bare.client.meta.region_name == "eu-west-1"  # from the environment
    named = from_url("s3://media/?endpoint_url=http://a:1", default_endpoint="http://b:2")
    assert isinstance(named, S3Store) and named.client.meta.endpoint_url == "http://a:1"
    aws = from_url("s3://media")
    assert isinstance(aws, S3Store) and "amazonaws.com" in aws.client.meta.endpoint_url


@pytest.mark.parametrize(
    "url",
    ["s3:///prefix", "s3://media?endpoint=http://a:1", "s3://media/a/../b", "ftp://host/x"],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(OptionError, match="storage URL"):
        from_url(url)


def test_s3_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now fails
    with pytest.raises(MissingExtraError) as caught:
        from_url("s3://media?endpoint_url=http://127.0.0.1:8333")
    assert caught.value.message.endswith("pip install 'video-transcriber[s3]'")


def test_an_endpoint_that_is_down_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = from_url(f"s3://media/in?endpoint_url=http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=f"s3://media/in/ at http://127.0.0.1:{port}"):
        store.check()
    assert time.monotonic() - started < 30


def test_an_endpoint_that_hangs_is_unavailable_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # It takes connections (the kernel's backlog) and never answers: a hung server, a
    # paused container. /ready gave up only after four minutes of boto3's retries.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        port = hung.getsockname()[1]
        store = from_url(f"s3://media/in?endpoint_url=http://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="cannot be used"):
            store.check()
        assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, None),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-199", (100, 200)),
        ("Bytes=999-", (999, 1000)),
        ("bytes=0-", (0, 1000)),
        ("bytes=900-5000", (900, 1000)),  # clipped to the end
        ("bytes=0-99999999999999999999999", (0, 1000)),  # past 64 bits: clipped too
        ("bytes=-99999999999999999999999", (0, 1000)),
        (f"bytes=0-{'9' * 65}", None),  # no sane client: ignored
        ("bytes=-1", (999, 1000)),
        ("bytes=-5000", (0, 1000)),
        (" bytes=5-5 ", (5, 6)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole, as the RFC allows
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=1-2-3", None),
    ],
)
def test_ranges(header: str | None, wanted: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == wanted


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),
        ("bytes=5000-6000", 1000),
        ("bytes=99999999999999999999-", 1000),
        ("bytes=-0", 1000),
        ("bytes=9-3", 1000),
        ("bytes=-5", 0),
        ("bytes=0-", 0),
    ],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_download_folders_of_processes_that_are_gone_are_swept(tmp_path: Path) -> None:
    # A worker killed while it held a local copy of its task's input left it behind.
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{DOWNLOADS}{int(done.stdout)}-abc"
    mine = tmp_path / f"{DOWNLOADS}{os.getpid()}-def"
    other = tmp_path / "transcriber-upload-1-x"
    for folder in (dead, mine, other):
        folder.mkdir()
        (folder / "input").write_bytes(b"x" * 100)
    assert sweep_downloads(tmp_path) == 1
    assert not dead.exists() and mine.exists() and other.exists()
