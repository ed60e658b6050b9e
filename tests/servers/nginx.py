"""nginx (Debian's) in front of test API nodes, configured from the shipped deploy/nginx/.

The files are laid out in a throwaway prefix as they would be in /etc/nginx
(conf.d/, snippets/, a site), with only what a test machine needs changed: the
upstream's servers, the listening ports, and paths of certificates and webroots.
Each change is asserted to apply, so a config that drifts from what the tests
expect fails loudly instead of being tested half-way.
"""

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

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
UPSTREAM = "conf.d/transcriber-upstream.conf"


def binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx (apt install nginx-light) is missing in CI")
        pytest.skip("nginx not installed: apt install nginx-light")
    return found


def replace(text: str, pattern: str, new: str, count: int | None = None) -> str:
    """`re.subn` that insists on matching (exactly `count` times when given)."""
    out, n = re.subn(pattern, new, text)
    assert n if count is None else n == count, f"{pattern!r} matched {n} times"
    return out


def upstream_for(ports: list[int]) -> str:
    """The shipped upstream block, its servers replaced by these local ports."""
    text = (DEPLOY / UPSTREAM).read_text()
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in ports)
    return replace(text, r"(?m)(?:^    server [^\n]+\n)+", servers, 1)


def lay_out(folder: Path, site: str, upstreams: list[int], edits: dict[str, str]) -> Path:
    """A prefix holding the shipped files; `edits` are regex replacements in the site.

    Returns the main config, which runs nginx in the foreground with every
    temporary path inside `folder`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DEPLOY / "conf.d", folder / "conf.d", dirs_exist_ok=True)
    shutil.copytree(DEPLOY / "snippets", folder / "snippets", dirs_exist_ok=True)
    (folder / UPSTREAM).write_text(upstream_for(upstreams))
    text = (DEPLOY / "sites" / site).read_text()
    for pattern, new in edits.items():
        text = replace(text, pattern, new)
    (folder / "site.conf").write_text(text)
    mime = Path("/etc/nginx/mime.types")
    conf = folder / "nginx.conf"
    conf.write_text(
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        + (f"  include {mime};\n" if mime.exists() else "")
        + f"  access_log {folder}/access.log;\n"
        f"  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n"
        f"  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n"
        f"  scgi_temp_path {folder}/scgi;\n"
        "  include conf.d/*.conf;\n"
        "  include site.conf;\n"
        "}\n"
    )
    return conf


def plain_site(port: int) -> dict[str, str]:
    """Edits that put sites/transcriber.conf on 127.0.0.1:`port`."""
    return {r"listen 80;": f"listen 127.0.0.1:{port};", r"\n *listen \[::\]:80;": ""}


def check(conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a laid-out prefix."""
    return subprocess.run(
        [binary(), "-t", "-c", str(conf), "-p", str(conf.parent)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@contextmanager
def serve(conf: Path, ports: list[int]) -> Iterator[None]:
    """Run nginx on a laid-out prefix until every one of `ports` accepts connections."""
    folder = conf.parent
    proc = subprocess.Popen(
        [binary(), "-c", str(conf), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "stderr.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 20
        for port in ports:
            while True:
                assert proc.poll() is None, (folder / "stderr.log").read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def nginx(folder: Path, upstreams: list[int], port: int) -> Iterator[str]:
    """Run nginx with the plain-HTTP deploy site on 127.0.0.1:`port`; yield its address."""
    conf = lay_out(folder, "transcriber.conf", upstreams, plain_site(port))
    with serve(conf, [port]):
        yield f"127.0.0.1:{port}"
