"""deploy/supervisor: the real supervisord runs the shipped programs.

The programs' paths are moved into a temporary folder (the install folder becomes
this virtualenv) and `user=` is dropped, since the test cannot switch users;
everything else is the shipped file. Settings reach the service through the .env
in its working directory, as the README says.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import DEPLOY, tool
from tests.integration.live_api import free_port
from tests.servers.nginx import replace

pytestmark = pytest.mark.slow

CONF = DEPLOY / "supervisor" / "video-transcriber.conf"


def relocated(root: Path, metrics_port: int) -> str:
    text = CONF.read_text()
    venv = f"{Path(sys.executable).parent}/"
    text = replace(text, re.escape("/opt/video-transcriber/venv/bin/"), venv)
    text = replace(text, "/var/lib/video-transcriber", str(root / "lib"))
    text = replace(text, "/var/log/video-transcriber", str(root / "log"))
    text = replace(text, r"(?m)^user=transcriber\n", "")
    return replace(text, r"--metrics-port 9100", f"--metrics-port {metrics_port}", 1)


class Supervisor:
    def __init__(self, root: Path, metrics_port: int) -> None:
        self.root = root
        (root / "lib").mkdir(parents=True)
        (root / "log").mkdir()
        (root / "programs.conf").write_text(relocated(root, metrics_port))
        sock = root / "supervisor.sock"
        self.conf = root / "supervisord.conf"
        self.conf.write_text(
            f"[supervisord]\nnodaemon=true\nlogfile={root}/supervisord.log\n"
            f"pidfile={root}/supervisord.pid\nchildlogdir={root}/log\n"
            f"[unix_http_server]\nfile={sock}\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            f"[supervisorctl]\nserverurl=unix://{sock}\n"
            f"[include]\nfiles={root}/programs.conf\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [tool("supervisord", "pip install supervisor"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # supervisorctl can talk to it only once its control socket is up.
        deadline = time.monotonic() + 30
        while not (self.root / "supervisor.sock").exists():
            assert self.proc.poll() is None, (self.root / "supervisord.log").read_text()
            assert time.monotonic() < deadline, "supervisord made no control socket in 30 s"
            time.sleep(0.05)

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [tool("supervisorctl", "pip install supervisor"), "-c", str(self.conf), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout

    def status(self, program: str) -> tuple[str, int | None]:
        """The program's state, and its pid while it runs."""
        line = self.ctl("status", program)
        pid = re.search(r"pid (\d+)", line)
        words = line.split()
        return (words[1] if len(words) > 1 else "", int(pid.group(1)) if pid else None)

    def wait_running(self, program: str, not_pid: int | None = None) -> int:
        deadline = time.monotonic() + 90
        while True:
            state, pid = self.status(program)
            if state == "RUNNING" and pid is not None and pid != not_pid:
                return pid
            assert time.monotonic() < deadline, (state, self.log(program))
            time.sleep(0.3)

    def log(self, program: str) -> str:
        name = "service.log" if program == "video-transcriber" else "worker.log"
        path = self.root / "log" / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def shutdown(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.ctl("shutdown")
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Supervisor]]:
    made: list[Supervisor] = []

    def start(settings: dict[str, str]) -> Supervisor:
        s = Supervisor(tmp_path / "sv", free_port())
        (s.root / "lib" / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        s.start()
        made.append(s)
        return s

    yield start
    for s in made:
        s.shutdown()


def wait_health(url: str, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log()
        time.sleep(0.3)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_service_is_restarted_after_sigkill(
    supervisor: Callable[[dict[str, str]], Supervisor], model_cache: Path
) -> None:
    port = free_port()
    sv = supervisor({"PORT": str(port), "TRANSCRIBER_MODEL_DIR": str(model_cache)})
    url = f"http://127.0.0.1:{port}"
    first = sv.wait_running("video-transcriber")
    wait_health(url, lambda: sv.log("video-transcriber"))
    # The worker program waits for a scale-out set-up to be started by hand.
    assert sv.status("video-transcriber-worker")[0] == "STOPPED"

    os.kill(first, signal.SIGKILL)
    second = sv.wait_running("video-transcriber", not_pid=first)
    wait_health(url, lambda: sv.log("video-transcriber"))
    assert (
        "exited: video-transcriber (terminated by SIGKILL"
        in (sv.root / "supervisord.log").read_text()
    )

    sv.shutdown()
    assert sv.proc is not None and sv.proc.returncode == 0
    assert not alive(second)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_worker_program_runs_on_the_scale_out_servers(
    supervisor: Callable[[dict[str, str]], Supervisor],
    model_cache: Path,
    redis_url: str,
    fresh_postgres_url: str,
    s3_bucket_url: str,
) -> None:
    sv = supervisor(
        {
            "TRANSCRIBER_MODEL_DIR": str(model_cache),
            "TRANSCRIBER_QUEUE_URL": redis_url,
            "TRANSCRIBER_DATABASE_URL": fresh_postgres_url,
            "TRANSCRIBER_STORAGE_URL": s3_bucket_url,
        }
    )
    assert "video-transcriber-worker: started" in sv.ctl("start", "video-transcriber-worker")
    sv.wait_running("video-transcriber-worker")
    port = int(re.findall(r"--metrics-port (\d+)", (sv.root / "programs.conf").read_text())[0])
    deadline = time.monotonic() + 60
    while True:
        try:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, sv.log("video-transcriber-worker")
            time.sleep(0.3)
    assert "transcriber_real_time_factor" in metrics
