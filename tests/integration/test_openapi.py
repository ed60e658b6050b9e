"""The OpenAPI document is honest: schemathesis, every check on, against a live service.

Every route has a response model and declares each status it can give, with the
error shape; a disallowed method gets 405 with `Allow`. A fixed seed and a bounded
number of examples keep the run reproducible and to about a minute. What a schema
cannot say (whether bytes are media, whether a URL resolves) is declared in
tests/schemathesis.toml with its reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.live_server import free_port, live_app
from tests.media_factory import write_audio

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"
SEED = 23
EXAMPLES = 25


def finished(url: str, task_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while (task := httpx.get(f"{url}/api/tasks/{task_id}").json())["status"] in (
        "queued",
        "processing",
    ):
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    return dict(task)


def test_schemathesis_finds_nothing(
    tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URLs the fuzzer makes up must never be fetched: every outbound request goes to a
    # proxy that is not there, and fails.
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, closed)
    quiet = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
    with live_app(tmp_path, model_cache, workers=1, max_upload_mb=5, upload_stall_s=5) as (
        url,
        _,
    ):
        ids = []
        for _ in range(2):
            r = httpx.post(f"{url}/api/tasks", files={"file": ("quiet.wav", quiet.read_bytes())})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
            assert finished(url, ids[-1])["status"] == "completed"
        env = os.environ | {"ST_TASK_ID": ids[0], "ST_DELETED_ID": ids[1]}
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
             "run", f"{url}/openapi.json", "--checks", "all", "--seed", str(SEED),
             "--max-examples", str(EXAMPLES), "--workers", "1", "--request-timeout", "30",
             "--generation-database", "none"],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]


def test_a_disallowed_method_names_the_allowed_ones(tmp_path: Path, model_cache: Path) -> None:
    with live_app(tmp_path, model_cache, workers=0) as (url, _):
        r = httpx.request("PUT", f"{url}/api/tasks/some-id")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
        assert r.json()["error"]["code"] == "method_not_allowed"
        r = httpx.request("PATCH", f"{url}/v2/transcript")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
        assert set(r.json()) == {"error"}
        r = httpx.request("PUT", f"{url}/v1/audio/transcriptions")  # OpenAI's shape
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        assert r.json()["error"] == {"message": "Method Not Allowed", "param": None,
                                     "type": "invalid_request_error",
                                     "code": "method_not_allowed"}  # fmt: skip
        spec = httpx.get(f"{url}/openapi.json").json()
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            for status in statuses - {"200", "201", "202", "204", "206"}:
                ref = str(op["responses"][status]["content"]["application/json"]["schema"])
                expected = "AaiError" if path.startswith("/v2/") else "ErrorBody"
                if path.startswith("/v1/"):
                    expected = "OaiError"  # OpenAI's shape
                if path == "/ready":
                    expected = "Ready"  # which check failed, in the usual body
                assert expected in ref, (method, path, status)
