"""Calls to a live service over HTTP, shared by the tests that run real server processes,
and `Server`, a real `transcriber serve` subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


class LiveApi:
    url: str

    def upload(self, path: Path, **data: Any) -> dict[str, Any]:
        with path.open("rb") as f:
            r = httpx.post(f"{self.url}/api/tasks", files={"file": (path.name, f)}, data=data)
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body

    def task(self, task_id: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/api/tasks/{task_id}").json()
        return body

    def result(self, task_id: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/api/tasks/{task_id}/result").json()
        return body

    def wait(self, task_id: str, limit_s: float = 300) -> dict[str, Any]:
        """The task's state once it is no longer queued or processing."""
        deadline = time.monotonic() + limit_s
        while (state := self.task(task_id))["status"] in ("queued", "processing"):
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        return state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(LiveApi):
    def __init__(self, root: Path, model_cache: Path) -> None:
        self.root, self.port = root, free_port()
        self.env = {
            **os.environ,
            "TRANSCRIBER_MODEL_DIR": str(model_cache),
            "TRANSCRIBER_DATA_DIR": str(root / "data"),
            "TRANSCRIBER_STORAGE_URL": f"file://{root / 'store'}",
            "TRANSCRIBER_WORKERS": "1",
            "TRANSCRIBER_BATCH_SIZE": "2",  # more, smaller batches: more checkpoints
            "PORT": str(self.port),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transcriber", "serve"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError((self.root / "server.log").read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        """At the end of a test: gone, whatever state it is in."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
