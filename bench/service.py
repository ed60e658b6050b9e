"""The service under load: what checkpoints write, and whether the event loop stays free.

Runs `transcriber serve` on a free port and sends the ~6-minute and then the long
bench file through `/v1/audio/transcriptions`, while a prober asks `/health` 50
times a second. During the long run 20 uploads of the short file arrive. Reports

- checkpoint bytes per audio hour (the worker's `transcriber_checkpoint_bytes_total`
  for each file), their growth exponent from 6 to 60 minutes, and their ratio to
  the final transcript's JSON; goal: linear, within 2x of the transcript;
- `/health` latency during the long run, p50 / p99 / worst; goal: p99 under 20 ms;
- what the server process wrote to disk in all (`/proc/PID/io`).
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

PROBE_HZ = 50
UPLOADS = 20
P99_GOAL_MS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prober:
    """GET /health at PROBE_HZ on one keep-alive connection; latencies in ms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            next_at = time.perf_counter()
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.url}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = (time.perf_counter() - started) * 1000
                if ok:
                    self.samples.append(took)
                else:
                    self.errors += 1
                next_at += 1 / PROBE_HZ
                self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def checkpoint_bytes(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("transcriber_checkpoint_bytes_total "):
            return float(line.split()[1])
    return 0.0


def written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def transcribe(url: str, path: Path) -> None:
    with path.open("rb") as f:
        r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (path.name, f)},
                       data={"model": "whisper-1", "language": "ru"}, timeout=3600)  # fmt: skip
    r.raise_for_status()


def upload(url: str, path: Path) -> str:
    with path.open("rb") as f:
        r = httpx.post(f"{url}/api/tasks", files={"file": (path.name, f)}, timeout=600)
    r.raise_for_status()
    task_id: str = r.json()["id"]
    return task_id


def result_size(url: str) -> int:
    """Bytes of the JSON result of the newest completed task."""
    done = httpx.get(f"{url}/api/tasks", params={"status": "completed", "limit": 1}).json()
    task_id = done["items"][0]["id"]
    return len(httpx.get(f"{url}/api/tasks/{task_id}/result").content)


def run(short: Path, long: Path, seconds: dict[Path, float], env: dict[str, str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        server_env = env | {
            "TRANSCRIBER_DATA_DIR": f"{tmp}/data",
            "TRANSCRIBER_STORAGE_URL": f"file://{tmp}/store",
            "TRANSCRIBER_WORKERS": "1",
            "PORT": str(port),
        }
        with Path(tmp, "server.log").open("wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "transcriber", "serve"],
                                      env=server_env, stdout=log, stderr=log)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.2)
            report(url, server.pid, short, long, seconds)
        finally:
            server.terminate()
            server.wait(timeout=120)


def report(url: str, pid: int, short: Path, long: Path, seconds: dict[Path, float]) -> None:
    per_hour: dict[Path, float] = {}
    transcript: dict[Path, int] = {}
    prober = Prober(url)
    disk_before = written(pid)
    for path in (short, long):
        before = checkpoint_bytes(url)
        if path is long:
            with prober, ThreadPoolExecutor(4) as pool:
                waiting = pool.submit(transcribe, url, path)
                time.sleep(5)  # the long task is running: now the uploads arrive
                ids = list(pool.map(lambda _: upload(url, short), range(UPLOADS)))
                waiting.result()
            for task_id in ids:  # queued behind the long one: not run
                httpx.delete(f"{url}/api/tasks/{task_id}")
        else:
            transcribe(url, path)
        spent = checkpoint_bytes(url) - before
        per_hour[path] = spent / seconds[path] * 3600
        transcript[path] = result_size(url)
        print(f"checkpoints, {path.name}: {spent / 1e6:.2f} MB written"
              f" ({per_hour[path] / 1e6:.2f} MB per audio hour);"
              f" final JSON {transcript[path] / 1e6:.2f} MB,"
              f" ratio {spent / transcript[path]:.2f}", flush=True)  # fmt: skip
    grow = math.log(per_hour[long] * seconds[long] / (per_hour[short] * seconds[short])) / math.log(
        seconds[long] / seconds[short]
    )
    print(f"checkpoint bytes grow with length^{grow:.2f} (1.00 is linear; was 1.98)")
    samples = prober.samples
    p99 = percentile(samples, 0.99)
    verdict = "met" if p99 < P99_GOAL_MS else "MISSED"
    print(f"/health at {PROBE_HZ} Hz during {long.name} via /v1 + {UPLOADS} uploads:"
          f" {len(samples)} answers, {prober.errors} errors; p50"
          f" {statistics.median(samples):.1f} ms, p99 {p99:.1f} ms, worst {max(samples):.1f} ms"
          f" (goal p99 < {P99_GOAL_MS:.0f} ms: {verdict})")  # fmt: skip
    print(f"server process wrote {(written(pid) - disk_before) / 1e6:.0f} MB to disk in all")


def main() -> None:
    """`python -m bench.service SHORT.wav LONG.wav`: the service phase alone."""
    from bench.run import ROOT, seconds_of

    short, long = Path(sys.argv[1]), Path(sys.argv[2])
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(ROOT)}
    run(short, long, {p: seconds_of(p) for p in (short, long)}, env)


if __name__ == "__main__":
    main()
