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
    raw: bytes = b""
    answered: int = 0


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
    secret: str | None = None
    """When set, POSTs are checked as docs/api.md's example receiver checks them
    (transcriber.signing): a bad signature or a stale timestamp gets 401, a message id
    already taken gets 409."""
    taken: set[str] = field(default_factory=set)

    def judge(self, headers: dict[str, str], raw: bytes) -> int | None:
        """401 or 409 for a delivery to refuse, None for one to take."""
        from transcriber.signing import WebhookVerificationError, verify

        assert self.secret is not None
        try:
            verify(self.secret, headers, raw)
        except WebhookVerificationError:
            return 401
        if headers["webhook-id"] in self.taken:
            return 409  # a replay of a delivery already taken
        self.taken.add(headers["webhook-id"])
        return None

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
            got = Received(self.path, headers, body, raw)
            rx.received.append(got)
            if rx.delays:
                time.sleep(rx.delays.pop(0))
            status = rx.statuses.pop(0) if rx.statuses else 200
            if rx.secret is not None:
                status = rx.judge(headers, raw) or status
            got.answered = status
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
