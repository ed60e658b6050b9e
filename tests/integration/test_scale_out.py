"""Scale-out on real servers: API nodes and Celery workers sharing PostgreSQL, S3 and Redis.

Two `transcriber serve` nodes run no workers; `transcriber worker` processes
take the tasks through Celery on Redis. Progress published by a worker reaches a
WebSocket on either node; a worker killed mid-task loses nothing (its lease
runs out and another worker resumes the task from its checkpoint).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.live_api import LiveApi, free_port
from tests.integration.test_api import JFK
from tests.integration.test_serve import collect, long_call
from tests.servers.receiver import Receiver
from transcriber.jobs.store import SqlJobStore

pytestmark = pytest.mark.slow


class Proc(LiveApi):
    """One `transcriber serve` or `transcriber worker` process with the shared backends."""

    def __init__(self, root: Path, name: str, env: dict[str, str], command: str) -> None:
        self.root, self.name, self.command = root, name, command
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "transcriber", self.command],
            env=self.env,
            stdout=out,
            stderr=out,
        )
        if self.command == "serve":
            self._wait_http()
        return self

    def _wait_http(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(self.tail())

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


@pytest.fixture
def cluster(
    tmp_path: Path, model_cache: Path, redis_url: str, fresh_postgres_url: str, s3_bucket_url: str
) -> Iterator[dict[str, Any]]:
    import redis

    redis.Redis.from_url(redis_url).flushall()  # no notices left from another test
    env = {
        **os.environ,
        "TRANSCRIBER_MODEL_DIR": str(model_cache),
        "TRANSCRIBER_DATA_DIR": str(tmp_path / "data"),
        "TRANSCRIBER_DATABASE_URL": fresh_postgres_url,
        "TRANSCRIBER_STORAGE_URL": s3_bucket_url,
        "TRANSCRIBER_QUEUE_URL": redis_url,
        "TRANSCRIBER_BATCH_SIZE": "2",  # more, smaller batches: more checkpoints
        "TRANSCRIBER_LEASE_S": "4",
    }
    procs: list[Proc] = []

    def node(name: str, command: str = "serve") -> Proc:
        p = Proc(tmp_path, name, env, command)
        procs.append(p)
        return p

    yield {"node": node, "redis": redis_url}
    for p in procs:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def test_two_api_nodes_one_worker(cluster: dict[str, Any], eval_root: Path, tmp_path: Path) -> None:
    api1, api2 = cluster["node"]("api1").start(), cluster["node"]("api2").start()
    ready = httpx.get(f"{api1.url}/ready").json()
    assert ready["checks"]["queue"] == "ok" and ready["status"] == "ok", ready
    worker = cluster["node"]("worker", "worker")
    worker.env["TRANSCRIBER_WORKER_METRICS_PORT"] = str(worker.port)
    worker.start()

    task = api1.upload(eval_root / JFK, language="en")
    # The worker's progress reaches a WebSocket on the *other* node, through Redis.
    events = asyncio.run(collect(f"ws://127.0.0.1:{api2.port}/ws/tasks/{task['id']}"))
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "completed", (kinds, worker.tail())
    assert "progress" in kinds
    assert "country" in events[-1]["task"]["transcript"]["text"]
    # Either node serves the result: one database, one bucket.
    srt = httpx.get(f"{api2.url}/api/tasks/{task['id']}/result", params={"format": "srt"})
    assert srt.status_code == 200 and "country" in srt.text
    assert api1.task(task["id"])["status"] == "completed"
    # The worker's own metrics count the audio it transcribed.
    scraped = httpx.get(f"http://127.0.0.1:{worker.port}/metrics").text
    audio = next(x for x in scraped.splitlines() if x.startswith("transcriber_audio_seconds_total"))
    assert 10.5 < float(audio.split()[-1]) < 11.5, audio
    assert "transcriber_real_time_factor_count 1.0" in scraped

    # The drop-in endpoints wait on a remote worker just as on a local one.
    with (eval_root / JFK).open("rb") as f:
        r = httpx.post(
            f"{api2.url}/v1/audio/transcriptions",
            files={"file": ("jfk.flac", f)},
            data={"model": "whisper-1", "response_format": "text"},
            timeout=120,
        )
    assert r.status_code == 200, r.text
    assert "country" in r.text

    # Cancelling on one node stops the task on the worker.
    long = api2.upload(long_call(eval_root, tmp_path), language="ru")
    while api2.task(long["id"])["status"] != "processing":
        time.sleep(0.1)
    assert httpx.delete(f"{api1.url}/api/tasks/{long['id']}").json()["status"] == "cancelled"
    deadline = time.monotonic() + 60
    while f"task {long['id']} cancelled" not in worker.tail():
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)
    assert api2.task(long["id"])["status"] == "cancelled"
    assert worker.proc is not None and worker.proc.poll() is None
    assert worker.stop() in (0, -signal.SIGTERM)


def test_a_killed_worker_loses_nothing(
    cluster: dict[str, Any], eval_root: Path, tmp_path: Path
) -> None:
    api = cluster["node"]("api").start()
    first = cluster["node"]("worker1", "worker").start()
    path = long_call(eval_root, tmp_path)
    task = api.upload(path, language="ru")
    deadline = time.monotonic() + 300
    while (state := api.task(task["id"]))["progress"] < 0.3 or state["status"] != "processing":
        assert state["status"] in ("queued", "processing"), state
        assert time.monotonic() < deadline, first.tail()
        time.sleep(0.1)
    first.stop(signal.SIGKILL)
    checkpoint_at = state["progress"]

    second = cluster["node"]("worker2", "worker").start()
    events = asyncio.run(collect(f"ws://127.0.0.1:{api.port}/ws/tasks/{task['id']}"))
    finals = [e["event"] for e in events if e["event"] in ("completed", "failed", "cancelled")]
    assert finals == ["completed"], second.tail()
    resumed = api.task(task["id"])
    assert resumed["attempts"] == 2
    assert "went silent" in second.tail()
    progress = [e["task"]["progress"] for e in events if e["event"] == "progress"]
    assert not progress or progress[0] >= checkpoint_at * 0.5  # resumed, not restarted

    # The same file, uninterrupted, gives the same transcript.
    again = api.upload(path, language="ru")
    api.wait(again["id"])
    a, b = api.result(task["id"]), api.result(again["id"])
    assert [s["text"] for s in a["segments"]] == [s["text"] for s in b["segments"]]
    assert [(s["start"], s["end"]) for s in a["segments"]] == [
        (s["start"], s["end"]) for s in b["segments"]
    ]


def test_notices_lost_by_the_broker_are_sent_again(
    cluster: dict[str, Any], eval_root: Path
) -> None:
    import redis

    api = cluster["node"]("api").start()
    task = api.upload(eval_root / JFK, language="en")
    redis.Redis.from_url(cluster["redis"]).flushall()  # a broker restart without persistence
    cluster["node"]("worker", "worker").start()
    assert api.wait(task["id"])["status"] == "completed"


def test_worker_refuses_the_embedded_queue(tmp_path: Path) -> None:
    env = {**os.environ, "TRANSCRIBER_QUEUE_URL": "embedded://",
           "TRANSCRIBER_DATA_DIR": str(tmp_path)}  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-m", "transcriber", "worker"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "redis://" in r.stderr and "TRANSCRIBER_QUEUE_URL" in r.stderr


def test_behind_nginx_with_the_shipped_config(
    cluster: dict[str, Any], eval_root: Path, tmp_path: Path
) -> None:
    from tests.servers.nginx import nginx

    api1, api2 = cluster["node"]("api1").start(), cluster["node"]("api2").start()
    cluster["node"]("worker", "worker").start()
    with nginx(tmp_path / "nginx", [api1.port, api2.port], free_port()) as front:
        with (eval_root / JFK).open("rb") as f:
            r = httpx.post(f"http://{front}/api/tasks", files={"file": ("jfk.flac", f)})
        assert r.status_code == 202, r.text
        task_id = r.json()["id"]
        events = asyncio.run(collect(f"ws://{front}/ws/tasks/{task_id}"))
        assert events[-1]["event"] == "completed", events[-3:]
        # Both nodes took requests (least_conn over two idle upstreams alternates).
        for _ in range(4):
            assert httpx.get(f"http://{front}/api/tasks/{task_id}").status_code == 200
    served = [p for p in (api1, api2) if f"/api/tasks/{task_id} " in p.tail()]
    assert len(served) == 2, "nginx sent every request to one node"


def test_doctor_checks_the_scale_out_servers(
    model_cache: Path, redis_url: str, s3_bucket_url: str
) -> None:
    from tests.integration.test_cli import cli
    from tests.servers.redis import free_port

    down = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/jobs"
    env = {
        "TRANSCRIBER_MODEL_DIR": str(model_cache),
        "TRANSCRIBER_DATABASE_URL": down,
        "TRANSCRIBER_STORAGE_URL": s3_bucket_url,
        "TRANSCRIBER_QUEUE_URL": redis_url,
    }
    r = cli("doctor", env_extra=env)
    assert r.returncode == 1, r.stderr
    lines = {line.split(":")[0].split()[-1]: line for line in r.stderr.splitlines() if ":" in line}
    assert "FAIL" in lines["database"] and "cannot connect" in lines["database"], r.stderr
    assert "s3cret" not in r.stderr
    assert "ok" in lines["storage"] and "reachable" in lines["storage"], r.stderr
    assert "ok" in lines["queue"] and redis_url in lines["queue"], r.stderr


def test_a_worker_sends_the_webhooks_a_dead_worker_owed(
    cluster: dict[str, Any], receiver: Receiver
) -> None:
    api = cluster["node"]("api").start()  # creates the schema
    jobs = SqlJobStore(api.env["TRANSCRIBER_DATABASE_URL"])
    try:
        ids = []
        for name in ("died-after-finishing", "died-while-posting"):
            hook = {"url": f"{receiver.url}/{name}"}
            task = jobs.create("", f"{name}.wav", f"{name}/input", {"webhook": hook}, 1.0)
            held = jobs.claim_next()
            assert held is not None and held.claim
            assert jobs.complete(task.id, held.claim, "r.json", "en", 1.0, 1.0, webhook=True)
            ids.append(task.id)
        assert jobs.claim_webhook(ids[1], lease_s=0.5)  # its sender is killed mid-post
        time.sleep(0.6)

        worker = cluster["node"]("worker", "worker")
        worker.env["TRANSCRIBER_ALLOW_PRIVATE_URLS"] = "true"  # the receiver is on 127.0.0.1
        worker.start()
        got = receiver.wait_for(2, limit_s=120)
        assert sorted(r.path for r in got) == ["/died-after-finishing", "/died-while-posting"]
        assert {r.body["status"] for r in got} == {"completed"}
        deadline = time.monotonic() + 30
        while any((t := jobs.get(i)) is None or t.webhook_status != 200 for i in ids):
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.2)
        assert jobs.webhooks_due() == [] and len(receiver.received) == 2
    finally:
        jobs.close()
