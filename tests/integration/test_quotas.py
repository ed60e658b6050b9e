"""Quotas per API key, made with `transcriber keys create NAME --minutes-per-day N
--max-running N`: over either, 429 with Retry-After and what is left in headers; one
key's use never touches another's; /metrics shows each key's use by id, not the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from tests.integration.live_server import live_app, raw_request, read_response
from tests.media_factory import write_audio


def keys(data: Path, *args: str) -> str:
    """`transcriber keys ARGS` on the service's data folder; what it printed."""
    env = os.environ | {"TRANSCRIBER_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "transcriber", "keys", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_each_key_has_its_own_limits(tmp_path: Path, model_cache: Path) -> None:
    data = tmp_path / "data"
    one = keys(data, "create", "one", "--max-running", "1")
    two = keys(data, "create", "two", "--minutes-per-day", "0.05")  # 3 s of audio a day
    free = keys(data, "create", "free")
    listed = keys(data, "list")
    assert "one" in listed and "1 running" in listed and "0.05 min/day" in listed
    assert one not in listed
    two_s = write_audio(tmp_path / "two.wav", np.zeros(32000, np.float32)).read_bytes()

    def upload(key: str) -> httpx.Response:
        return httpx.post(f"{url}/api/tasks", files={"file": ("two.wav", two_s)},
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    with live_app(tmp_path, model_cache, workers=0) as (url, _):  # tasks stay queued
        assert upload(one).status_code == 202
        full = upload(one)
        assert full.status_code == 429, full.text
        assert full.json()["error"]["code"] == "quota_exceeded"
        assert full.headers["x-quota-max-running"] == "1"
        assert full.headers["x-quota-running-remaining"] == "0"
        assert int(full.headers["retry-after"]) > 0
        # Refused before the body is read, like the queue.
        head = (
            "POST /api/tasks HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n"
            f"Authorization: Bearer {one}\r\nContent-Type: multipart/form-data; boundary=b"
        )
        conn = raw_request(url, head)
        assert read_response(conn)[0] == 429
        conn.close()

        assert upload(two).status_code == 202  # 2 of its 3 s
        spent = upload(two)  # 2 more would pass the day's 3 s
        assert spent.status_code == 429, spent.text
        assert spent.headers["x-quota-minutes-per-day"] == "0.05"
        assert float(spent.headers["x-quota-minutes-remaining"]) == 0.02  # 1 s left
        assert 0 < int(spent.headers["retry-after"]) <= 86400  # at 00:00 UTC
        assert "0.03 min" in spent.json()["error"]["message"]

        for _ in range(3):  # the others' limits are theirs alone
            assert upload(free).status_code == 202
        assert upload(one).status_code == 429 and upload(two).status_code == 429

        metrics = httpx.get(f"{url}/metrics").text
        lines = [x for x in metrics.splitlines() if x.startswith("transcriber_key_")]
        assert any('name="two"' in x and x.endswith(" 2.0") and "audio_seconds" in x
                   for x in lines), lines  # fmt: skip
        assert any('name="free"' in x and x.endswith(" 3.0") and "active" in x for x in lines)
        for key in (one, two, free):
            assert key not in metrics
