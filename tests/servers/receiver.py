"""A real HTTP server that records what is sent to it: the far end of webhooks, and a
media host for URL downloads. Runs in a thread of the test process on a free port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Answers to POSTs, first to last (then 200 for ever)."""
    delays: list[float] = field(default_factory=list)
    """Seconds each POST, first to last, waits before answering (then none)."""
    files: dict[str, Path] = field(default_factory=dict)
    """GET /<name> serves the file; any other GET is 404."""
    gets: list[Received] = field(default_factory=list)
    """The GETs asked for, first to last."""

    def wait_for(self, count: int, limit_s: float = 60) -> list[Received]:
        deadline = time.monotonic() + limit_s
        while len(self.received) < count:
            assert time.monotonic() < deadline, self.received
            time.sleep(0.05)
        return self.received


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            rx.received.append(Received(self.path, headers, body))
            if rx.delays:
                time.sleep(rx.delays.pop(0))
            status = rx.statuses.pop(0) if rx.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            rx.gets.append(Received(self.path, headers, None))
            path = rx.files.get(self.path.lstrip("/").split("?", 1)[0])
            if path is None:
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    rx.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rx
    server.shutdown()
    server.server_close()
