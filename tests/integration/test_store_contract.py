"""One contract for every Store: LocalStore on a folder and S3Store on a real SeaweedFS.

Each S3 test gets its own prefix in a bucket shared by the module (a SeaweedFS
bucket costs a volume), which also checks that stores sharing a bucket stay apart.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.servers.s3 import S3Server
from transcriber.errors import (
    FileMissingError,
    NotMediaError,
    UnavailableError,
    UploadTooLargeError,
)
from transcriber.storage import LocalStore, Store
from transcriber.storage.base import CHUNK
from transcriber.storage.s3 import S3Store

HOSTILE = ["/etc/passwd", "../x", "a/../../x", "a/../b", "a//b", "a/", "", ".", "a/./b", "a\\b"]


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket()


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "local":
        return LocalStore(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3Store(request.getfixturevalue("bucket"), f"t-{uuid.uuid4().hex}/in", server.client)


def listing(store: Store) -> set[str]:
    """Every blob the store holds, by key, straight from the disk or the bucket."""
    if isinstance(store, LocalStore):
        return {p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()}
    assert isinstance(store, S3Store)
    pages = store.client.get_paginator("list_objects_v2")
    found = set()
    for page in pages.paginate(Bucket=store.bucket, Prefix=store.prefix):
        found |= {o["Key"].removeprefix(store.prefix) for o in page.get("Contents", ())}
    return found


async def chunks(blocks: list[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def put_stream(store: Store, key: str, blocks: list[bytes], limit: int) -> int:
    return asyncio.run(store.put_stream(key, chunks(blocks), limit))


def pattern(size: int) -> bytes:
    """Bytes whose every offset is told apart from its neighbours, so a shifted range shows."""
    return bytes(i * 7 % 251 for i in range(size))


def test_put_and_get_bytes(store: Store) -> None:
    store.put_bytes("t1/result.json", b'{"text": "first"}')
    assert store.get_bytes("t1/result.json") == b'{"text": "first"}'
    store.put_bytes("t1/result.json", b"second")
    assert store.get_bytes("t1/result.json") == b"second"
    store.put_bytes("t1/empty", b"")
    assert store.get_bytes("t1/empty") == b""
    assert listing(store) == {"t1/result.json", "t1/empty"}


def test_put_stream_stores_every_chunk(store: Store) -> None:
    blocks = [b"abc", b"", b"defg", pattern(1000)]
    assert put_stream(store, "t1/input", blocks, limit=1007) == 1007  # exactly at the limit
    assert store.get_bytes("t1/input") == b"".join(blocks)
    assert listing(store) == {"t1/input"}


def test_put_stream_checks_a_local_copy_before_storing(store: Store) -> None:
    seen: list[tuple[str, bytes]] = []

    def look(path: Path) -> None:
        seen.append((path.suffix, path.read_bytes()))

    def refuse(path: Path) -> None:
        raise NotMediaError(f"{path}: not media")

    assert asyncio.run(store.put_stream("t1/input.mp4", chunks([b"ab", b"cd"]), 10, look)) == 4
    assert seen == [(".mp4", b"abcd")] and store.get_bytes("t1/input.mp4") == b"abcd"
    with pytest.raises(NotMediaError):
        asyncio.run(store.put_stream("t2/input", chunks([b"zz"]), 10, refuse))
    assert listing(store) == {"t1/input.mp4"}  # the refused one left nothing behind


def test_put_stream_over_the_limit_stores_nothing(store: Store) -> None:
    with pytest.raises(UploadTooLargeError, match="limit of 1 MB"):
        put_stream(store, "t1/input", [b"x" * 600_000, b"x" * 600_000], limit=1_000_000)
    assert listing(store) == set()
    assert not store.exists("t1/input")

    store.put_bytes("t2/input", b"old")
    with pytest.raises(UploadTooLargeError):
        put_stream(store, "t2/input", [b"new", b"x" * 10], limit=5)
    assert store.get_bytes("t2/input") == b"old"
    assert listing(store) == {"t2/input"}


def staged(store: Store, data: bytes) -> Path:
    path = store.staging() / uuid.uuid4().hex
    path.write_bytes(data)
    return path


def test_put_file_consumes_the_staged_file(store: Store) -> None:
    seen: list[bytes] = []
    first = staged(store, b"abcd")
    assert asyncio.run(store.put_file("t1/input", first, lambda p: seen.append(p.read_bytes())))
    assert seen == [b"abcd"] and store.get_bytes("t1/input") == b"abcd"
    assert not first.exists()  # moved or sent: never left behind, never copied locally

    def refuse(path: Path) -> None:
        raise NotMediaError(f"{path}: not media")

    second = staged(store, b"zz")
    with pytest.raises(NotMediaError):
        asyncio.run(store.put_file("t2/input", second, refuse))
    assert not second.exists()
    assert listing(store) == {"t1/input"}


def test_uploads_staged_by_a_dead_process_are_cleared(
    store: Store, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A process killed mid-upload leaves its staged file; the next process to stage
    removes those a day old (on S3 they piled up in the temporary folder for ever)."""
    old, fresh = staged(store, b"old"), staged(store, b"new")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    if kind == "local":
        again: Store = LocalStore(tmp_path / "store")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        again = S3Store(request.getfixturevalue("bucket"), "next", server.client)
    assert again.staging() == store.staging()
    assert not old.exists() and fresh.exists()
    fresh.unlink()


def test_copies_within_the_store_stay_apart(store: Store) -> None:
    data = pattern(9 * CHUNK + 5)  # large enough that S3 copies it in parts
    put_stream(store, "uploads/k/u1", [data], limit=len(data))
    store.copy("uploads/k/u1", "t1/input")
    store.copy("uploads/k/u1", "t2/input")  # an upload may be used again
    assert listing(store) == {"uploads/k/u1", "t1/input", "t2/input"}
    assert store.get_bytes("t1/input") == store.get_bytes("t2/input") == data
    # Deleting the upload or one copy leaves the others whole, and so does replacing one.
    store.delete_prefix("uploads/k")
    store.put_bytes("t2/input", b"replaced")
    assert store.get_bytes("t1/input") == data
    assert store.get_bytes("t2/input") == b"replaced"
    with pytest.raises(FileMissingError):
        store.copy("uploads/k/u1", "t3/input")
    assert listing(store) == {"t1/input", "t2/input"}


def test_a_large_upload_streams_in_and_out(store: Store) -> None:
    # past 8 MiB boto3 sends parts; read back in blocks of at most CHUNK
    data = pattern(9 * CHUNK + 123)
    blocks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    assert put_stream(store, "t1/input", blocks, limit=len(data)) == len(data)
    assert store.size("t1/input") == len(data)
    out = list(store.read_range("t1/input", 0, len(data)))
    assert b"".join(out) == data
    assert len(out) >= 10 and max(len(b) for b in out) <= CHUNK
    cross = 8 * CHUNK - 10  # across the first part's end
    assert b"".join(store.read_range("t1/input", cross, cross + 20)) == data[cross : cross + 20]


def test_exists_and_size(store: Store) -> None:
    assert not store.exists("t1/input")
    store.put_bytes("t1/input", b"12345")
    assert store.exists("t1/input") and store.size("t1/input") == 5
    assert not store.exists("t1")  # a folder of blobs is not a blob
    assert not store.exists("t1/input/more")


def test_read_range(store: Store) -> None:
    data = pattern(1000)
    store.put_bytes("t1/input", data)

    def read(start: int, stop: int) -> bytes:
        return b"".join(store.read_range("t1/input", start, stop))

    assert read(0, 1000) == data
    assert read(100, 200) == data[100:200]
    assert read(999, 1000) == data[-1:]
    assert read(0, 1) == data[:1]
    assert read(500, 500) == b""
    assert read(990, 5000) == data[990:]  # clipped at the end
    assert read(1000, 1010) == b"" and read(2000, 3000) == b""
    with pytest.raises(ValueError):
        read(10, 5)
    with pytest.raises(ValueError):
        read(-1, 5)


def test_missing_keys(store: Store) -> None:
    store.put_bytes("t1/other", b"x")
    for read in (
        lambda: store.get_bytes("t1/input"),
        lambda: store.size("t1/input"),
        lambda: store.read_range("t1/input", 0, 10),  # fails at the call, before streaming
        lambda: store.local_path("t1/input").__enter__(),
    ):
        with pytest.raises(FileMissingError, match="t1/input: not in the store") as caught:
            read()
        assert caught.value.code == "file_not_found"
    assert not store.exists("t1/input")
    store.delete_prefix("t1/input")
    store.delete_prefix("nothing-here")
    assert listing(store) == {"t1/other"}


def test_local_path(kind: str, store: Store) -> None:
    store.put_bytes("t1/input.mp4", b"media bytes")
    with store.local_path("t1/input.mp4") as path:
        assert path.suffix == ".mp4" and path.is_file()
        assert path.read_bytes() == b"media bytes"
    if kind == "s3":  # a download, which is gone after the block, even one that fails
        assert not path.exists() and not path.parent.exists()
        with pytest.raises(RuntimeError), store.local_path("t1/input.mp4") as failing:
            raise RuntimeError
        assert not failing.exists()
    assert store.get_bytes("t1/input.mp4") == b"media bytes"
    assert listing(store) == {"t1/input.mp4"}


def test_delete_prefix(store: Store) -> None:
    many = [f"t1/chunks/{i:04d}" for i in range(1005)]  # more than one page of 1000
    keep = ["t10/input", "t2/input", "t2/result.json", "t1x"]
    for key in [*many, "t1/input", "t1/sub/deep/result.json", *keep]:
        store.put_bytes(key, key.encode())

    store.delete_prefix("t1/sub")  # a folder inside a folder
    assert not store.exists("t1/sub/deep/result.json") and store.exists("t1/input")
    store.delete_prefix("t1")
    assert listing(store) == set(keep)  # t10 and t1x share the letters, not the folder
    store.delete_prefix("t2/input")  # a single blob
    assert listing(store) == {"t10/input", "t2/result.json", "t1x"}


def test_delete_older_removes_only_old_blobs_under_the_prefix(store: Store) -> None:
    for key in ["uploads/a/1", "uploads/b/2", "uploadsx/3", "t1/input"]:
        store.put_bytes(key, b"x")
    assert store.delete_older("uploads", 3600) == 0  # all written just now
    assert store.delete_older("nothing-here", 0) == 0
    time.sleep(2.1)  # S3 keeps LastModified in whole seconds
    store.put_bytes("uploads/a/new", b"x")
    assert store.delete_older("uploads", 1.0) == 2
    assert listing(store) == {"uploads/a/new", "uploadsx/3", "t1/input"}


def test_check_passes_and_leaves_nothing(store: Store) -> None:
    store.check()
    assert listing(store) == set()


@pytest.fixture
def broken(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Store, list[str]]:
    """A store that cannot be written, and the words its check() must say."""
    if kind == "local":
        store = LocalStore(tmp_path / "store")
        store.root.rmdir()
        store.root.write_bytes(b"a file where the folder was")
        return store, [str(store.root)]
    server: S3Server = request.getfixturevalue("s3_server")
    return S3Store("no-such-bucket", "in", server.client), [
        "s3://no-such-bucket/in/",
        server.endpoint,
        "no such bucket",
    ]


def test_check_on_a_broken_store(broken: tuple[Store, list[str]]) -> None:
    store, words = broken
    with pytest.raises(UnavailableError) as caught:
        store.check()
    assert all(w in caught.value.message for w in words), caught.value.message


def test_writes_to_a_broken_store_are_unavailable(
    broken: tuple[Store, list[str]], tmp_path: Path
) -> None:
    """Every write names the store out of reach (503 in the API, a retry in the worker),
    not an exception of the client library's own (boto3 wraps a failed upload in
    S3UploadFailedError, which answered 500)."""
    store, _ = broken
    data = tmp_path / "data.bin"
    data.write_bytes(b"abcd")
    with pytest.raises(UnavailableError):
        asyncio.run(store.put_file("t/input", data))
    assert not data.exists()  # put_file consumes its staged file whatever happens
    with pytest.raises(UnavailableError):
        put_stream(store, "t/input", [b"ab", b"cd"], 100)
    with pytest.raises(UnavailableError):
        store.put_bytes("t/result.json", b"{}")


@pytest.mark.parametrize("key", HOSTILE)
def test_hostile_keys_are_refused(store: Store, key: str, tmp_path: Path) -> None:
    store.put_bytes("t1/input", b"x")
    calls: list[Callable[[], object]] = [
        lambda: store.put_bytes(key, b"evil"),
        lambda: put_stream(store, key, [b"evil"], limit=100),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.size(key),
        lambda: store.read_range(key, 0, 1),
        lambda: store.local_path(key).__enter__(),
        lambda: store.delete_prefix(key),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="invalid storage key"):
            call()
    assert listing(store) == {"t1/input"}
    assert not (tmp_path / "x").exists() and not (tmp_path / "b").exists()


def test_s3_stores_sharing_a_bucket_stay_apart(s3_server: S3Server, bucket: str) -> None:
    name = f"t-{uuid.uuid4().hex}"
    here = S3Store(bucket, name, s3_server.client)
    beside = S3Store(bucket, f"{name}x", s3_server.client)  # the same letters, and more
    plain = S3Store(s3_server.bucket(), "", s3_server.client)
    for s in (here, beside, plain):
        s.put_bytes("t1/input", b"x")
    assert plain.client.head_object(Bucket=plain.bucket, Key="t1/input")["ContentLength"] == 1
    here.client.head_object(Bucket=bucket, Key=f"{here.prefix}t1/input")
    here.delete_prefix("t1")
    assert listing(here) == set() and listing(beside) == {"t1/input"}
    plain.delete_prefix("t1")
    assert listing(plain) == set()
