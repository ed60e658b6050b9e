"""The service killed again and again (SIGKILL at random moments) finishes every task
exactly once, with the text an uninterrupted run gives; a task whose process keeps
dying under it is given up after TRANSCRIBER_MAX_ATTEMPTS."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.integration.live_api import Server
from tests.media_factory import load, write_audio
from transcriber.jobs.status import TaskStatus
from transcriber.jobs.store import SqlJobStore

pytestmark = pytest.mark.slow
KILLS = 10
SEED = 2311


def clips(eval_root: Path, tmp: Path, count: int, each: int) -> list[Path]:
    """`count` files of `each` Russian clips, no two alike."""
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"]
    gap = np.zeros(8000, np.float32)
    out = []
    for i in range(count):
        picked = rows[i * each : (i + 1) * each]
        audio = np.concatenate([x for r in picked for x in (load(eval_root / r["path"]), gap)])
        out.append(write_audio(tmp / f"part{i}.wav", audio))
    return out


def texts(server: Server, task_id: str) -> list[tuple[str, float, float]]:
    return [(s["text"], s["start"], s["end"]) for s in server.result(task_id)["segments"]]


def test_ten_sigkills_lose_and_repeat_nothing(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    files = clips(eval_root, tmp_path, count=4, each=6)
    server = Server(tmp_path, model_cache)
    server.env["TRANSCRIBER_MAX_ATTEMPTS"] = "100"  # deaths here are ours, not a poison file
    rng = random.Random(SEED)
    started = time.monotonic()
    try:
        server.start()
        tasks = [server.upload(f, language="ru")["id"] for f in files]
        for _ in range(KILLS):  # each after a random stretch of work (or of starting up)
            time.sleep(rng.uniform(0.5, 4.0))
            server.stop(signal.SIGKILL)
            server.start()
        done = [server.wait(t, limit_s=300) for t in tasks]
        assert [d["status"] for d in done] == ["completed"] * len(tasks), done
        attempts = [d["attempts"] for d in done]
        assert sum(attempts) > len(tasks), f"no task was ever interrupted: {attempts}"

        again = [server.upload(f, language="ru")["id"] for f in files]  # uninterrupted
        for t in again:
            assert server.wait(t, limit_s=300)["status"] == "completed"
        for interrupted, clean in zip(tasks, again, strict=True):
            assert texts(server, interrupted) == texts(server, clean)
    finally:
        server.kill()
    # Exactly once: one row and one result per task, nothing left half-done.
    jobs = SqlJobStore(f"sqlite:///{tmp_path / 'data' / 'transcriber.db'}")
    try:
        rows, total = jobs.list_tasks(None, None, 100, 0)
        assert total == 2 * len(files)
        assert {r.status for r in rows} == {TaskStatus.completed}
        assert all(jobs.checkpoint(r.id) == [] for r in rows)
    finally:
        jobs.close()
    results = sorted(p.parent.name for p in (tmp_path / "store").glob("*/result.json"))
    assert results == sorted(tasks + again)
    assert time.monotonic() - started < 420


def test_a_task_that_keeps_killing_the_service_is_given_up(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    (long,) = clips(eval_root, tmp_path, count=1, each=20)
    server = Server(tmp_path, model_cache)
    server.env["TRANSCRIBER_MAX_ATTEMPTS"] = "2"
    try:
        server.start()
        task = server.upload(long, language="ru")["id"]
        for attempt in (1, 2):  # the process dies under it, twice
            deadline = time.monotonic() + 120
            while (state := server.task(task))["attempts"] < attempt or state["status"] != (
                "processing"
            ):
                assert time.monotonic() < deadline, state
                time.sleep(0.05)
            server.stop(signal.SIGKILL)
            server.start()
        given_up = server.wait(task, limit_s=60)
        assert given_up["status"] == "failed" and given_up["attempts"] == 2
        assert given_up["error"] == (
            "part0.wav: gave up after 2 attempts: the service stopped while transcribing it"
            " each time, so it is not tried again (a file that crashes the service would"
            " otherwise crash it for ever); retry it to try once more"
        )
        dead = httpx.get(f"{server.url}/api/tasks", params={"status": "failed"}).json()
        assert [t["id"] for t in dead["items"]] == [task]  # the dead-letter list
        assert httpx.post(f"{server.url}/api/tasks/{task}/retry").status_code == 202
        assert server.wait(task, limit_s=300)["status"] == "completed"  # one more run
    finally:
        server.kill()
