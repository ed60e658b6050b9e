"""tinyproxy (Debian's): a real forward HTTP proxy, for the service's outbound requests
behind a corporate proxy. It marks what it forwards with a `Via: ... tinyproxy` header."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[str]:
    """A proxy on 127.0.0.1 that forwards for local clients; yields its URL."""
    binary = shutil.which("tinyproxy") or (
        "/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None
    )
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("tinyproxy (apt install tinyproxy) is missing in CI")
        pytest.skip("tinyproxy not installed: apt install tinyproxy")
    port = _free_port()
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Info\n"
        "Allow 127.0.0.1\n"
    )
    log = (tmp_path / "tinyproxy.log").open("w")
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "tinyproxy.log").read_text()
                assert time.monotonic() < deadline, "tinyproxy did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
