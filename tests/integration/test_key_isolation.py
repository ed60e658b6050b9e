"""One key never sees or touches another's work, on every route family: /api, /ws, /v1,
/v2 and /asr. The sweep walks the OpenAPI document, so a route added later is swept
too."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import make_client
from tests.media_factory import write_audio

pytestmark = pytest.mark.slow
A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
FILL = {"kind": "srt", "model_id": "whisper-1", "number": "1"}
QUERY = {"words": "x"}


def minimal_body(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON body that the operation's schema accepts (its required fields, zero-valued),
    so that the sweep reaches the owner check instead of stopping at validation."""
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    schema = content["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    zero = {"integer": 0, "number": 0, "string": "x", "boolean": False, "array": []}
    props = schema.get("properties", {})
    return {name: zero.get(props[name].get("type", ""), {}) for name in schema.get("required", [])}


def settle(c: TestClient, task_id: str, key: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (task := c.get(f"/api/tasks/{task_id}", headers=key).json())["status"] in (
        "queued",
        "processing",
    ):
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    return dict(task)


def test_a_key_cannot_reach_another_keys_work(tmp_path: Path, model_cache: Path) -> None:
    quiet = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32)).read_bytes()
    with make_client(tmp_path, model_cache, workers=1, api_keys="key-a,key-b") as c:
        # A's work through every family that makes tasks.
        made = c.post("/api/tasks", files={"file": ("a.wav", quiet)}, headers=A).json()["id"]
        settle(c, made, A)
        assert c.post("/v1/audio/transcriptions", files={"file": ("v1.wav", quiet)},
                      headers=A).status_code == 200  # fmt: skip
        assert (
            c.post("/asr", files={"audio_file": ("asr.wav", quiet)}, headers=A).status_code == 200
        )
        upload_url = c.post("/v2/upload", content=quiet, headers=A).json()["upload_url"]
        spare_url = c.post("/v2/upload", content=quiet, headers=A).json()["upload_url"]
        v2 = c.post("/v2/transcript", json={"audio_url": upload_url}, headers=A).json()["id"]
        settle(c, v2, A)
        mine = {t["id"]: t for t in c.get("/api/tasks", headers=A).json()["items"]}
        assert len(mine) == 4 and all(t["status"] == "completed" for t in mine.values())

        # B sees none of it in lists...
        assert c.get("/api/tasks", headers=B).json()["total"] == 0
        assert c.get("/v2/transcript", headers=B).json()["transcripts"] == []
        # ...cannot use A's upload...
        used = c.post("/v2/transcript", json={"audio_url": spare_url}, headers=B)
        assert used.status_code == 400 and "no such upload for this API key" in used.text
        # ...and every route that names a task answers B with 404, for each of A's tasks.
        swept = 0
        spec = c.get("/openapi.json").json()
        for path, methods in spec["paths"].items():
            if "{task_id}" not in path and "{transcript_id}" not in path:
                continue
            for method, operation in methods.items():
                body = minimal_body(spec, operation)
                for task_id in mine:
                    url = re.sub(r"\{(\w+)\}", lambda m, t=task_id: FILL.get(m.group(1), t), path)
                    r = c.request(method.upper(), url, headers=B, params=QUERY, json=body)
                    assert r.status_code == 404, (method, url, r.status_code, r.text)
                    swept += 1
        assert swept >= 4 * 12
        for task_id, before in mine.items():  # nothing B did changed A's tasks
            assert c.get(f"/api/tasks/{task_id}", headers=A).json() == before
            assert c.get(f"/api/tasks/{task_id}/result", headers=A).status_code == 200

        # /ws: B cannot watch A's task, and B's stream of all its tasks carries only B's.
        with c.websocket_connect(f"/ws/tasks/{made}?token=key-b") as ws:
            assert ws.receive_json()["error"]["code"] == "not_found"
        with c.websocket_connect("/ws/tasks?token=key-b") as b_events:
            a_new = c.post("/api/tasks", files={"file": ("a2.wav", quiet)}, headers=A).json()
            settle(c, a_new["id"], A)
            b_new = c.post("/api/tasks", files={"file": ("b.wav", quiet)}, headers=B).json()
            while (event := b_events.receive_json())["event"] != "completed":
                assert event["task"]["id"] == b_new["id"], event
            assert event["task"]["id"] == b_new["id"]
        assert c.get("/api/tasks", headers=B).json()["total"] == 1
        assert c.get("/api/tasks", headers=A).json()["total"] == 5
