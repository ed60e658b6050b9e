"""A real `transcriber serve` subprocess: WebSocket progress, SIGKILL recovery, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from tests.conftest import eval_rows
from tests.integration.live_api import Server
from tests.media_factory import load, write_audio
from tests.servers.receiver import Receiver
from transcriber.jobs.store import SqlJobStore

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path, model_cache)
    s.start()
    yield s
    s.kill()


async def collect(url: str, until: set[str] | None = None, limit_s: float = 300) -> list[Any]:
    events = []
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(limit_s):
            async for raw in ws:
                msg = json.loads(raw)
                events.append(msg)
                if until and msg["event"] in until:
                    break
    return events


def test_websocket_progress_on_video_and_russian(server: Server, eval_root: Path) -> None:
    video = eval_root / eval_rows("video.jsonl")[0]["path"]
    ru = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru" and r["sample_rate"] == 16000)
    t1 = server.upload(video)
    t2 = server.upload(eval_root / ru["path"], language="ru")
    ws = f"ws://127.0.0.1:{server.port}/ws/tasks"
    events = asyncio.run(collect(f"{ws}/{t1['id']}", {"completed", "failed"}))
    assert events[-1]["event"] == "completed", events[-1]
    assert "example" in events[-1]["task"]["transcript"]["text"].lower()
    progress = [e["task"]["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    late = asyncio.run(collect(f"{ws}/{t2['id']}", {"completed", "failed"}))
    assert late[-1]["event"] == "completed"
    assert server.task(t2["id"])["language"] == "ru"
    ref = set(ru["text"].lower().split())
    got = set(server.result(t2["id"])["text"].lower().replace(",", "").split())
    assert len(ref & got) >= len(ref) // 2


def long_call(eval_root: Path, tmp: Path) -> Path:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:30]
    gap = np.zeros(8000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])
    return write_audio(tmp / "long_call.wav", audio)


def test_sigkill_mid_task_resumes_without_duplicates(
    server: Server, eval_root: Path, tmp_path: Path
) -> None:
    path = long_call(eval_root, tmp_path)
    task = server.upload(path, language="ru")
    deadline = time.monotonic() + 300
    while True:
        state = server.task(task["id"])
        if state["status"] == "processing" and state["progress"] >= 0.3:
            break
        assert state["status"] in ("queued", "processing"), state
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    checkpoint_at = state["progress"]

    server.start()
    ws = f"ws://127.0.0.1:{server.port}/ws/tasks/{task['id']}"
    events = asyncio.run(collect(ws))  # the server closes the socket after the final event
    finals = [e for e in events if e["event"] in ("completed", "failed", "cancelled")]
    assert [e["event"] for e in finals] == ["completed"], events[-3:]
    resumed = server.task(task["id"])
    assert resumed["attempts"] == 2
    # The resumed run started from its checkpoint, not from zero: the worker says where.
    said = re.search(rf"task {task['id']} resumes at (\d+\.\d) s of",
                     (server.root / "server.log").read_text())  # fmt: skip
    assert said, "the task did not resume from a checkpoint"
    assert float(said.group(1)) >= checkpoint_at * resumed["duration"] * 0.5

    again = server.upload(path, language="ru")
    asyncio.run(collect(f"ws://127.0.0.1:{server.port}/ws/tasks/{again['id']}"))
    a, b = server.result(task["id"]), server.result(again["id"])
    assert [s["text"] for s in a["segments"]] == [s["text"] for s in b["segments"]]
    assert [(s["start"], s["end"]) for s in a["segments"]] == [
        (s["start"], s["end"]) for s in b["segments"]
    ]
    listed = httpx.get(f"{server.url}/api/tasks").json()
    assert listed["total"] == 2
    assert len(list((server.root / "store").glob("*/result.json"))) == 2


def test_sigterm_puts_running_task_back(server: Server, eval_root: Path, tmp_path: Path) -> None:
    path = long_call(eval_root, tmp_path)
    task = server.upload(path, language="ru")
    deadline = time.monotonic() + 120
    while server.task(task["id"])["status"] != "processing":
        assert time.monotonic() < deadline, server.task(task["id"])
        time.sleep(0.1)
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is a clean exit here.
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    log = (server.root / "server.log").read_text()
    assert "returned to the queue at shutdown" in log
    assert "Traceback" not in log
    server.start()
    events = asyncio.run(collect(f"ws://127.0.0.1:{server.port}/ws/tasks/{task['id']}"))
    assert events[-1]["event"] == "completed"
    assert server.task(task["id"])["attempts"] == 1  # a shutdown does not use up an attempt


def test_a_webhook_in_flight_at_sigkill_is_sent_after_restart(
    tmp_path: Path, model_cache: Path, eval_root: Path, receiver: Receiver
) -> None:
    receiver.delays = [600.0]  # the first delivery hangs: the process dies while posting
    s = Server(tmp_path, model_cache)
    s.env["TRANSCRIBER_ALLOW_PRIVATE_URLS"] = "true"  # the receiver is on 127.0.0.1
    s.start()
    try:
        ru = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru")
        task = s.upload(eval_root / ru["path"], language="ru", webhook=f"{receiver.url}/hook")
        receiver.wait_for(1, limit_s=300)
        assert s.task(task["id"])["webhook_status"] is None  # not answered yet
        s.stop(signal.SIGKILL)

        s.start()  # the delivery the dead process held is owed again at once
        second = receiver.wait_for(2, limit_s=60)[1]
        assert second.path == "/hook" and second.body["id"] == task["id"]
        assert second.body["status"] == "completed"
        deadline = time.monotonic() + 30
        while s.task(task["id"])["webhook_status"] != 200:
            assert time.monotonic() < deadline, s.task(task["id"])
            time.sleep(0.1)
        # Recorded as delivered: nothing is owed, so no sweep can send it again.
        jobs = SqlJobStore(f"sqlite:///{tmp_path / 'data' / 'transcriber.db'}")
        try:
            stored = jobs.get(task["id"])
            assert stored is not None and stored.webhook_due_at is None
        finally:
            jobs.close()
        assert len(receiver.received) == 2
    finally:
        s.kill()


def test_an_upload_the_disk_cannot_hold_is_a_507_and_the_service_goes_on(
    tmp_path: Path, eval_root: Path, model_cache: Path
) -> None:
    """Once the model is loaded, the server process may write no file over 1 MB
    (RLIMIT_FSIZE, refused as a quota or a full disk would): a 2 MB upload is answered
    507 naming the reason (it was a 500) and leaves nothing staged; a small upload after
    it is transcribed."""
    s = Server(tmp_path, model_cache)
    s.start()
    jfk = write_audio(tmp_path / "jfk8.wav", load(eval_root / "en/whisper/jfk.flac")[:128000])

    def transcribed() -> str:
        task = s.upload(jfk, language="en")  # 256 kB
        deadline = time.monotonic() + 120
        while (state := s.task(task["id"]))["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        assert state["status"] == "completed", state["error"]
        return str(s.result(task["id"])["text"]).lower()

    try:
        assert "americans" in transcribed()
        assert s.proc is not None
        resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (10**6, 10**6))
        big = write_audio(tmp_path / "big.wav", np.zeros(16000 * 64, np.float32))
        with big.open("rb") as f:
            r = httpx.post(f"{s.url}/api/tasks", files={"file": (big.name, f)}, timeout=60)
        assert r.status_code == 507, (r.status_code, r.text)
        error = r.json()["error"]
        assert error["code"] == "insufficient_storage"
        assert "cannot store this request (File too large)" in error["message"]
        staged = [p for p in (tmp_path / "store" / ".staging").iterdir() if p.is_file()]
        assert staged == [], staged
        assert "americans" in transcribed()
    finally:
        s.kill()
