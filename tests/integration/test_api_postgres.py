"""The service with its job store on a real PostgreSQL, and what it says when that is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.integration.conftest import make_client
from tests.integration.test_api import JFK, assert_error, upload, wait
from tests.media_factory import load, write_audio, write_hollow_wav
from tests.servers.postgres import PostgresCluster, new_database
from transcriber.errors import UnavailableError


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A server of this test's own, to stop while the service uses it."""
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
def test_transcribe_retry_delete_on_postgres(
    fresh_postgres_url: str, tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    with make_client(tmp_path, model_cache, workers=1, database_url=fresh_postgres_url) as c:
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
        task = upload(c, eval_root / JFK, language="en").json()
        done = wait(c, task["id"])
        assert done["status"] == "completed", done
        assert done["started_at"].endswith("+00:00") and done["attempts"] == 1
        listed = c.get("/api/tasks").json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == task["id"]
        txt = c.get(f"/api/tasks/{task['id']}/result", params={"format": "txt"})
        assert txt.status_code == 200 and "country" in txt.text.lower()
        assert_error(c.post(f"/api/tasks/{task['id']}/retry"), 409, "conflict")

        hollow = write_hollow_wav(tmp_path / "пусто.wav", rate=8000)
        bad = upload(c, hollow, language="ru").json()
        assert wait(c, bad["id"])["status"] == "failed"
        assert c.post(f"/api/tasks/{bad['id']}/retry").status_code == 202
        again = wait(c, bad["id"])
        assert again["status"] == "failed" and again["attempts"] == 2
        assert "пусто.wav" in again["error"]
        assert c.get("/api/tasks", params={"status": "failed"}).json()["total"] == 1

        for t in (task, bad):
            assert c.delete(f"/api/tasks/{t['id']}").status_code == 204
        assert c.get("/api/tasks").json()["total"] == 0


@pytest.mark.slow
def test_ready_names_a_database_that_went_away(
    own_cluster: PostgresCluster,
    tmp_path: Path,
    model_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = new_database(own_cluster.url())
    with make_client(tmp_path, model_cache, workers=1, database_url=url) as c:
        assert c.get("/ready").status_code == 200
        own_cluster.stop(remove=False, mode="fast")  # a shutdown: it comes back whole
        # Other routes answer 503 in the one error shape, not 500.
        listed = c.get("/api/tasks")
        assert listed.status_code == 503, listed.text
        assert listed.json()["error"]["code"] == "unavailable"
        # The WebSockets too (their keys are in the database): a reason and 1013 "try
        # again later", not a bare 1011.
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            c.websocket_connect("/ws/tasks/some-task") as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 1013 and "job database is unavailable" in closed.value.reason
        with c.websocket_connect("/ws/live") as ws:
            refused = ws.receive_json()
            assert refused["error"]["code"] == "unavailable", refused
            assert "job database is unavailable" in refused["error"]["message"]
        deadline = time.monotonic() + 30  # the worker tries to claim a task, and fails
        while "cannot take the next task" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text[-2000:]
            time.sleep(0.05)
        ready = c.get("/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "unavailable"
        message = body["checks"]["database"]
        assert message.startswith(
            f"cannot connect to the job database at 127.0.0.1:{own_cluster.port} ("
        )
        assert "Connection refused" in message
        assert body["checks"]["storage"] == "ok"

        # The database comes back, and so does everything: the worker lived through it.
        own_cluster.resume()
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        quiet = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
        task = upload(c, quiet).json()
        assert wait(c, task["id"])["status"] == "completed"


@pytest.mark.slow
def test_a_task_outlives_a_database_outage_in_its_middle(
    own_cluster: PostgresCluster,
    tmp_path: Path,
    model_cache: Path,
    eval_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database stops while a task runs: the worker waits for it, puts the task back
    in the queue, and runs it again to the end (it used to fail the task, fail to record
    that, and die, leaving the task `processing` and the queue without a worker)."""
    jfk = load(eval_root / JFK)
    pause = np.zeros(8000, np.float32)
    long = write_audio(tmp_path / "jfk5.wav", np.concatenate([jfk, pause] * 5))  # 58 s
    url = new_database(own_cluster.url())
    with make_client(tmp_path, model_cache, workers=1, database_url=url) as c:
        task = upload(c, long, language="en").json()
        deadline = time.monotonic() + 120
        while c.get(f"/api/tasks/{task['id']}").json()["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        own_cluster.stop(remove=False, mode="fast")
        while "the job database went away" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text[-2000:]
            time.sleep(0.05)
        own_cluster.resume()
        done = wait(c, task["id"])
        assert done["status"] == "completed", done
        assert done["attempts"] == 2
        text = c.get(f"/api/tasks/{task['id']}/result", params={"format": "txt"}).text
        assert text.lower().count("country") >= 5, text
        # The worker thread lived through it: a second task runs too.
        quiet = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
        assert wait(c, upload(c, quiet).json()["id"])["status"] == "completed"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens once it is closed


def test_start_up_without_the_database_fails_with_a_clear_error(
    tmp_path: Path, model_cache: Path
) -> None:
    port = closed_port()
    url = f"postgresql+psycopg://app:s3cret@127.0.0.1:{port}/jobs"
    with pytest.raises(UnavailableError) as e, make_client(tmp_path, model_cache, database_url=url):
        pass
    assert f"database at 127.0.0.1:{port} (postgresql+psycopg://app:***@" in e.value.message
    assert "s3cret" not in e.value.message
    # `transcriber serve` says so in one line and exits, instead of a start-up traceback.
    env = os.environ | {"TRANSCRIBER_DATABASE_URL": url, "TRANSCRIBER_MODEL_DIR": str(model_cache)}
    serve = subprocess.run(
        [sys.executable, "-m", "transcriber", "serve", "--port", str(closed_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 1, serve.stderr
    assert f"error: cannot connect to the job database at 127.0.0.1:{port}" in serve.stderr
    assert "Traceback" not in serve.stderr and "s3cret" not in serve.stderr
