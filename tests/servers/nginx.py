"""nginx (Debian's) in front of test API nodes, configured from deploy/nginx.conf."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


def _binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx (apt install nginx-light) is missing in CI")
        pytest.skip("nginx not installed: apt install nginx-light")
    return found


def site_for(upstreams: list[int], port: int) -> str:
    """The shipped site config, pointed at these API ports and listening on `port`."""
    text = DEPLOY_CONF.read_text()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)
    text, n = re.subn(r"(upstream transcriber_api \{\n    least_conn;\n)(?:    server [^\n]+\n)+",
                      lambda m: m.group(1) + servers, text)  # fmt: skip
    assert n == 1, "deploy/nginx.conf no longer has the upstream block this test expects"
    text, n = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", text)
    assert n == 1
    return text


@contextmanager
def nginx(folder: Path, upstreams: list[int], port: int) -> Iterator[str]:
    """Run nginx with the deploy site on 127.0.0.1:`port`; yield its base URL."""
    binary = _binary()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log {folder}/access.log;\n"
        f"  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n"
        f"  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n"
        f"  scgi_temp_path {folder}/scgi;\n"
        f"{site_for(upstreams, port)}\n"
        "}\n"
    )
    proc = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "stderr.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (folder / "stderr.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
