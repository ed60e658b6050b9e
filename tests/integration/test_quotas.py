"""Quotas per API key, made with `transcriber keys create NAME --minutes-per-day N
--max-running N`: over either, 429 with Retry-After and what is left in headers; one
key's use never touches another's; /metrics shows each key's use by id, not the key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from tests.integration.live_server import live_app, raw_request, read_response
from tests.media_factory import load, write_audio
from transcriber.live.client import frames, live_url, stream


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


async def _answer(url: str, start: dict[str, Any]) -> tuple[list[dict[str, Any]], int | None]:
    """Every message of a live session that sends `start` and nothing else, and its close
    code (the server refuses it, or it is stopped at once)."""
    messages = []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(start))
        with contextlib.suppress(websockets.ConnectionClosed):
            async with asyncio.timeout(60):
                async for raw in ws:
                    message = json.loads(raw)
                    messages.append(message)
                    if message["type"] == "ready":
                        await ws.send(json.dumps({"type": "stop"}))
        return messages, ws.close_code


def test_live_sessions_count_against_the_key_quota(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    """An open live session is one of the key's running tasks; its audio counts against
    the key's minutes a day, and a session is ended where they run out, keeping what was
    heard up to there; a key with nothing left is refused at the start (1013)."""
    data = tmp_path / "data"
    one = keys(data, "create", "one", "--max-running", "1")
    two = keys(data, "create", "two", "--minutes-per-day", "0.05")  # 3 s of audio a day
    speech = load(eval_root / "en/whisper/jfk.flac")  # 11 s
    pcm = (speech.clip(-1, 1) * 32767).astype("<i2").tobytes()
    start = {"type": "start", "language": "en", "sample_rate": 16000}

    with live_app(tmp_path, model_cache, workers=0) as (url, _):

        async def while_one_is_open() -> tuple[Any, ...]:
            async with websockets.connect(live_url(url, token=one)) as ws:
                await ws.send(json.dumps(start))
                assert json.loads(await ws.recv())["type"] == "ready"
                second = await _answer(live_url(url, token=one), start)
                realtime = await _answer(
                    live_url(url, token=one, path="/v1/realtime"), {"type": "session.update"}
                )
                upload = await asyncio.to_thread(
                    httpx.post, f"{url}/api/tasks", files={"file": ("a.wav", wav_bytes)},
                    headers={"Authorization": f"Bearer {one}"},
                )  # fmt: skip
                await ws.send(json.dumps({"type": "stop"}))
                async for raw in ws:
                    if json.loads(raw)["type"] == "done":
                        break
            return second, realtime, upload

        wav_bytes = write_audio(tmp_path / "a.wav", np.zeros(16000, np.float32)).read_bytes()
        (messages, code), (rt_messages, rt_code), upload = asyncio.run(while_one_is_open())
        assert code == 1013 and messages[0]["error"]["code"] == "quota_exceeded", messages
        assert "1 task(s) queued or running at once" in messages[0]["error"]["message"]
        assert rt_code == 1013 and rt_messages[0]["error"]["code"] == "quota_exceeded"
        assert rt_messages[0]["error"]["type"] == "insufficient_quota"  # as OpenAI's type
        assert upload.status_code == 429 and upload.headers["x-quota-running-remaining"] == "0"
        # The session ended: its task is saved as completed, so the key has room again.
        messages, code = asyncio.run(_answer(live_url(url, token=one), start))
        assert code == 1000 and messages[-1]["type"] == "done", messages

        run = asyncio.run(
            stream(live_url(url, token=two), start, frames(pcm, 32000), 32000, speed=0)
        )
        errors = run.of_type("error")
        assert run.close_code == 1013 and errors, run.messages
        assert errors[0]["error"]["code"] == "quota_exceeded"
        assert "what was heard is saved" in errors[0]["error"]["message"]
        done = run.of_type("done")[0]
        assert done["task"]["status"] == "completed"
        assert done["task"]["duration"] == pytest.approx(3.0, abs=0.01)  # cut at the quota
        assert "fellow" in done["transcript"]["text"].lower()  # jfk's first words
        messages, code = asyncio.run(_answer(live_url(url, token=two), start))
        assert code == 1013 and messages[0]["error"]["code"] == "quota_exceeded"
        assert "0.00 left today" in messages[0]["error"]["message"]
