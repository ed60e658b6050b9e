"""The API through httpx against create_app(settings), with the real model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import srt
from fastapi.testclient import TestClient

from tests.integration.conftest import make_client
from tests.media_factory import write_hollow_wav, write_silence

pytestmark = pytest.mark.slow
JFK = "en/whisper/jfk.flac"


def upload(c: TestClient, path: Path, headers: dict[str, str] | None = None, **data: Any) -> Any:
    with path.open("rb") as f:
        return c.post("/api/tasks", files={"file": (path.name, f)}, data=data, headers=headers)


def wait(c: TestClient, task_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        task: dict[str, Any] = c.get(f"/api/tasks/{task_id}", headers=headers).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish")


def assert_error(resp: Any, status: int, code: str | None = None) -> None:
    """The service's error shape, or under `/v1` OpenAI's (with `type` and `param`)."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    fields = {"code", "message"}
    if resp.request.url.path.startswith("/v1/"):
        fields |= {"type", "param"}
    assert set(body) == {"error"} and set(body["error"]) == fields
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def test_task_lifecycle(client: TestClient, eval_root: Path, tmp_path: Path) -> None:
    r = upload(client, eval_root / JFK, language="en", formats="srt,json",
               prompt="Kennedy, fellow Americans")  # fmt: skip
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["options"]["initial_prompt"] == "Kennedy, fellow Americans"
    assert "formats" not in task["options"]  # a field that did nothing: gone, and ignored
    assert task["status"] in ("queued", "processing") and task["duration"] == pytest.approx(11.0)
    events = []
    with client.websocket_connect(f"/ws/tasks/{task['id']}") as ws:
        while True:
            msg = ws.receive_json()
            events.append(msg)
            if msg["event"] in ("completed", "failed"):
                break
    assert events[0]["event"] in ("state", "completed")
    assert events[-1]["event"] == "completed", events[-1]
    assert "fellow americans" in events[-1]["task"]["transcript"]["text"].lower()
    done = client.get(f"/api/tasks/{task['id']}").json()
    assert done["status"] == "completed" and done["progress"] == 1.0 and done["language"] == "en"
    assert done["warnings"] == []
    for key in ("queue_position", "eta_seconds", "created_at", "started_at", "finished_at"):
        assert key in done
    srt_resp = client.get(f"/api/tasks/{task['id']}/result", params={"format": "srt"})
    assert srt_resp.headers["content-type"].startswith("application/x-subrip")
    assert 'filename="jfk.srt"' in srt_resp.headers["content-disposition"]
    assert list(srt.parse(srt_resp.text))
    for fmt in ("json", "txt", "vtt", "tsv", "docx"):
        assert client.get(f"/api/tasks/{task['id']}/result", params={"format": fmt}).content
    assert_error(client.get(f"/api/tasks/{task['id']}/result", params={"format": "pdf"}), 422)
    listed = client.get("/api/tasks", params={"status": "completed"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == task["id"]
    assert client.get("/api/tasks", params={"status": "failed"}).json()["total"] == 0
    metrics = client.get("/metrics").text
    assert 'transcriber_tasks{status="completed"} 1.0' in metrics
    assert "transcriber_audio_seconds_total 11.0" in metrics
    assert "transcriber_real_time_factor_bucket" in metrics
    assert 'route="/api/tasks"' in metrics
    # Deleting a finished task removes it and its files.
    assert client.delete(f"/api/tasks/{task['id']}").status_code == 204
    assert_error(client.get(f"/api/tasks/{task['id']}"), 404, "not_found")
    assert not list((tmp_path / "store").glob(f"{task['id']}*"))


def test_a_tasks_warnings_show_in_its_view(client: TestClient, tmp_path: Path) -> None:
    quiet = write_silence(tmp_path / "quiet.flac", 20.0)
    r = upload(client, quiet, language="auto")
    assert r.status_code == 202, r.text
    assert r.json()["warnings"] == []  # nothing to say before it is done
    done = wait(client, r.json()["id"])
    assert done["status"] == "completed", done
    (warning,) = done["warnings"]
    assert warning == {
        "code": "no_speech",
        "message": "no speech was found in the 19 s of audio",  # 19.58 s: as players show it
        "values": {"seconds": 19, "speech_found": False},
    }
    doc = client.get(f"/api/tasks/{done['id']}/result", params={"format": "json"}).json()
    assert doc["metadata"]["warnings"] == done["warnings"]


def test_health_ready_docs(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready").json()
    assert ready == {
        "status": "ok",
        "checks": {"database": "ok", "storage": "ok", "queue": "ok", "model": "ok"},
    }
    assert "/api/tasks" in client.get("/openapi.json").json()["paths"]


def test_bad_input_errors(client: TestClient, eval_root: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("just text\n" * 100)
    assert_error(upload(client, text), 415, "not_media")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_error(upload(client, empty), 415, "empty_file")
    jfk = eval_root / JFK
    assert_error(upload(client, jfk, language="klingon!"), 422)
    assert_error(upload(client, jfk, language="xx"), 422, "invalid_option")
    assert_error(upload(client, jfk, model="../../etc"), 422, "invalid_option")
    assert_error(upload(client, jfk, model="/opt/models/whisper"), 422, "invalid_option")
    assert_error(upload(client, jfk, beam_size=99), 422)
    assert_error(upload(client, jfk, channels="both"), 422)
    assert_error(upload(client, jfk, min_speakers=3, max_speakers=2), 422, "invalid_option")
    assert_error(upload(client, jfk, speakers=2, min_speakers=3), 422, "invalid_option")
    assert_error(client.post("/api/tasks", data={"language": "en"}), 422)
    assert_error(client.get("/api/tasks", params={"offset": 10**20}), 422, "invalid_request")
    long_prompt = upload(client, eval_root / JFK, prompt="слово " * 1000)
    assert_error(long_prompt, 422, "invalid_option")
    assert "the prompt is 6000 characters; at most 4000" in long_prompt.json()["error"]["message"]
    assert client.get("/api/tasks").json()["total"] == 0
    assert not [p for p in (tmp_path / "store").glob("*") if not p.name.startswith(".")]


def test_a_file_that_fails_late_names_the_upload(client: TestClient, tmp_path: Path) -> None:
    # The header is fine, so the upload is taken; decoding then finds no sound at all.
    hollow = write_hollow_wav(tmp_path / "Запись пустая.wav", rate=8000)
    task = upload(client, hollow, language="ru")
    assert task.status_code == 202, task.text
    done = wait(client, task.json()["id"])
    assert done["status"] == "failed"
    assert done["error"] == "Запись пустая.wav: the audio stream holds no sound (0 samples)"


def test_limits(tmp_path: Path, model_cache: Path, eval_root: Path) -> None:
    jfk = eval_root / JFK
    with make_client(tmp_path / "a", model_cache, workers=0, max_upload_mb=0.05) as c:
        assert_error(upload(c, jfk), 413, "too_large")
    with make_client(tmp_path / "b", model_cache, workers=0, max_duration_s=5) as c:
        assert_error(upload(c, jfk), 413, "too_large")
    with make_client(tmp_path / "c", model_cache, workers=0, max_queue=1) as c:
        assert upload(c, jfk).status_code == 202
        full = upload(c, jfk)
        assert_error(full, 429, "queue_full")
        assert int(full.headers["retry-after"]) > 0


def test_api_keys_isolate_tasks(tmp_path: Path, model_cache: Path, eval_root: Path) -> None:
    one, two = {"Authorization": "Bearer key-one"}, {"Authorization": "Bearer key-two"}
    with make_client(tmp_path, model_cache, workers=0, api_keys="key-one,key-two") as c:
        assert_error(c.get("/api/tasks"), 401, "unauthorized")
        assert_error(c.get("/api/tasks", headers={"Authorization": "Bearer nope"}), 401)
        assert_error(upload(c, eval_root / JFK), 401)
        task = upload(c, eval_root / JFK, headers=one).json()
        assert c.get(f"/api/tasks/{task['id']}", headers=one).status_code == 200
        for path in (f"/api/tasks/{task['id']}", f"/api/tasks/{task['id']}/result"):
            assert_error(c.get(path, headers=two), 404)
        assert_error(c.delete(f"/api/tasks/{task['id']}", headers=two), 404)
        assert c.get("/api/tasks", headers=two).json()["total"] == 0
        assert c.get("/api/tasks", headers=one).json()["total"] == 1
        with c.websocket_connect(f"/ws/tasks/{task['id']}?token=key-two") as ws:
            assert ws.receive_json()["error"]["code"] == "not_found"
        with c.websocket_connect(f"/ws/tasks/{task['id']}?token=key-one") as ws:
            assert ws.receive_json()["task"]["id"] == task["id"]
        assert c.get("/health").status_code == 200


def test_cancel_queued_and_running(client: TestClient, eval_root: Path, tmp_path: Path) -> None:
    long = eval_root / "ru_more/asterisk_ru/core/demo-instruct.wav"
    running = upload(client, long, language="ru").json()
    queued = upload(client, eval_root / JFK).json()
    deadline = time.monotonic() + 120
    while client.get(f"/api/tasks/{running['id']}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.delete(f"/api/tasks/{queued['id']}").json()["status"] == "cancelled"
    stopped_at = time.monotonic()
    assert client.delete(f"/api/tasks/{running['id']}").json()["status"] == "cancelled"
    # The worker notices within seconds and takes no further task from a cancelled slot.
    while client.get("/metrics").text.count('status="processing"} 1.0'):
        assert time.monotonic() - stopped_at < 15
        time.sleep(0.2)
    for t in (running, queued):
        final = client.get(f"/api/tasks/{t['id']}").json()
        assert final["status"] == "cancelled"
        assert_error(client.get(f"/api/tasks/{t['id']}/result"), 409, "conflict")
        assert not (tmp_path / "store" / t["id"]).exists()


def test_cyrillic_names_and_media_ranges(
    client: TestClient, eval_root: Path, tmp_path: Path
) -> None:
    named = tmp_path / "лекция.wav"
    named.write_bytes((eval_root / "ru/coqui_stt/ru.wav").read_bytes())
    task = upload(client, named, language="ru").json()
    assert wait(client, task["id"])["status"] == "completed"
    r = client.get(f"/api/tasks/{task['id']}/result", params={"format": "srt"})
    assert r.status_code == 200
    assert (
        "filename*=UTF-8''%D0%BB%D0%B5%D0%BA%D1%86%D0%B8%D1%8F.srt"
        in r.headers["content-disposition"]
    )
    media = client.get(f"/api/tasks/{task['id']}/media", headers={"Range": "bytes=0-99"})
    assert media.status_code == 206 and len(media.content) == 100
    assert media.headers["content-type"].startswith("audio/")


def test_download_names_have_a_real_stem_and_no_control_characters(
    client: TestClient, eval_root: Path
) -> None:
    """curl -OJ and browsers save under these names: a non-Latin stem keeps an ASCII
    stand-in of `transcript`, a stem of dots is no dotfile, CR/LF never reach a header."""
    audio = (eval_root / JFK).read_bytes()

    def task_named(quoted_name: str) -> str:
        body = (
            b'--b\r\nContent-Disposition: form-data; name="end"\r\n\r\n1\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file";'
            b" filename*=UTF-8''" + quoted_name.encode() + b"\r\n\r\n" + audio + b"\r\n--b--\r\n"
        )
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        r = client.post("/api/tasks", content=body, headers=headers)
        assert r.status_code == 202, r.text
        task = wait(client, r.json()["id"])
        assert task["status"] == "completed", task
        return str(task["id"])

    brat = "%D0%91%D1%80%D0%B0%D1%82"
    named = {  # the name uploaded (percent-encoded) → (ASCII filename, filename*)
        f"{brat}.flac": ("transcript.srt", f"{brat}.srt"),
        "...": ("transcript.srt", "transcript.srt"),
        "a%0D%0Ab%00%1F.flac": ("ab.srt", "ab.srt"),
    }
    for quoted, (ascii_name, utf8_name) in named.items():
        task_id = task_named(quoted)
        for path in ("result", "export"):
            r = client.get(f"/api/tasks/{task_id}/{path}", params={"format": "srt"})
            assert r.status_code == 200, r.text
            assert r.headers["content-disposition"] == (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"
            )
