"""Calls to a live service over HTTP, shared by the tests that run real server processes."""

from __future__ import annotations

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
