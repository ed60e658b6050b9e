"""The app under a real uvicorn in a thread of the test process, on a free port: for tests
that need real sockets (a body sent slowly, or not at all) but not a separate process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from transcriber.api import create_app
from transcriber.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_app(tmp: Path, model_cache: Path, **overrides: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, app) of the service on 127.0.0.1, stopped when the block ends."""
    defaults = {"model_dir": model_cache, "data_dir": tmp / "data",
                "storage_url": f"file://{tmp / 'store'}"}  # fmt: skip
    settings = Settings(_env_file=None, **(defaults | overrides))  # type: ignore[call-arg]
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def raw_request(url: str, head: str, body: bytes = b"") -> socket.socket:
    """A connection to the live app with `head` (request line and headers, without the
    blank line) and the first bytes of a body sent; the caller reads or sends more."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
    return conn


def read_response(conn: socket.socket, limit_s: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer on `conn` (the server closes after it)."""
    conn.settimeout(limit_s)
    data = b""
    while b"\r\n\r\n" not in data:
        block = conn.recv(65536)
        assert block, f"the connection closed before an answer: {data!r}"
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        block = conn.recv(65536)
        if not block:
            break
        body += block
    return status, headers, body
