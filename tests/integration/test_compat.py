"""Drop-in endpoints for OpenAI-audio and whisper-asr-webservice clients, with the real model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import srt
import webvtt
from fastapi.testclient import TestClient

from tests.conftest import eval_rows
from tests.integration.conftest import make_client
from tests.integration.test_api import JFK, assert_error
from tests.media_factory import write_audio, write_hollow_wav

pytestmark = pytest.mark.slow


def openai(c: TestClient, path: Path, headers: dict[str, str] | None = None, **data: Any) -> Any:
    with path.open("rb") as f:
        return c.post(
            "/v1/audio/transcriptions",
            files={"file": (path.name, f)},
            data=data,
            headers=headers,
        )


def asr(c: TestClient, path: Path, **params: Any) -> Any:
    with path.open("rb") as f:
        return c.post("/asr", files={"audio_file": (path.name, f)}, params=params)


def test_openai_formats(client: TestClient, eval_root: Path) -> None:
    jfk = eval_root / JFK
    r = openai(client, jfk, model="whisper-1")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"text"} and "ask not what your country" in r.json()["text"].lower()

    # `segment` is the default granularity: accepted with any format, as it changes nothing.
    r = openai(client, jfk, model="whisper-1", response_format="text", language="en",
               **{"timestamp_granularities[]": "segment"})  # fmt: skip
    assert r.headers["content-type"].startswith("text/plain")
    assert "your country can do for you" in r.text.lower()

    r = openai(
        client,
        jfk,
        model="base",
        response_format="verbose_json",
        **{"timestamp_granularities[]": ["word", "segment"]},
    )
    body = r.json()
    assert body["task"] == "transcribe" and body["language"] == "en"
    assert 10.5 < body["duration"] < 11.5
    assert body["segments"] and body["segments"][0]["id"] == 0
    assert all(s["start"] < s["end"] for s in body["segments"])
    words = body["words"]
    assert [w["word"].lower().strip(",.") for w in words][:3] == ["and", "so", "my"]
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))

    subs = list(srt.parse(openai(client, jfk, response_format="srt", language="en").text))
    assert subs and "country" in " ".join(s.content for s in subs).lower()
    captions = webvtt.from_string(openai(client, jfk, response_format="vtt").text)
    assert captions and captions[0].start.startswith("00:00:")

    # Each request is an ordinary task too: it shows in the task list.
    tasks = client.get("/api/tasks").json()
    assert tasks["total"] == 5 and {t["status"] for t in tasks["items"]} == {"completed"}


def openai_error(resp: Any, status: int, code: str, param: str | None) -> dict[str, Any]:
    """The error in OpenAI's shape, as `/v1` answers: `type` is OpenAI's for the status,
    `param` the field at fault."""
    assert_error(resp, status, code)
    error: dict[str, Any] = resp.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    return error


def test_openai_refusals(client: TestClient, eval_root: Path) -> None:
    jfk = eval_root / JFK
    openai_error(openai(client, jfk, response_format="pdf"), 422, "invalid_option",
                 "response_format")  # fmt: skip
    openai_error(openai(client, jfk, model="/srv/models/big"), 422, "invalid_option", "model")
    openai_error(openai(client, jfk, model="whisperr-large"), 422, "model_not_found", "model")
    openai_error(openai(client, jfk, language="xx"), 422, "invalid_option", "language")
    openai_error(openai(client, jfk, prompt="x" * 5000), 422, "invalid_option", "prompt")
    openai_error(openai(client, jfk, temperature=3), 422, "invalid_request", "temperature")
    nan = openai(client, jfk, temperature="nan")  # not "should be less than or equal to 1"
    openai_error(nan, 422, "invalid_request", "temperature")
    assert "finite number" in nan.json()["error"]["message"]
    two = openai(client, jfk, temperature=3, stream="maybe")  # two fields: no one param
    openai_error(two, 422, "invalid_request", None)
    bad = {"timestamp_granularities[]": ["phoneme"]}
    openai_error(openai(client, jfk, **bad), 422, "invalid_option", "timestamp_granularities")
    # Words come only in verbose_json: asked for with another format, they would be
    # dropped without a word (OpenAI's reference requires verbose_json for them).
    for fmt in ("json", "text", "srt", "diarized_json"):
        words = openai(client, jfk, response_format=fmt, **{"timestamp_granularities[]": "word"})
        error = openai_error(words, 422, "invalid_option", "timestamp_granularities")
        assert "verbose_json" in error["message"]
    # OpenAI's translations take none of the transcription-only fields: each one that
    # asks for something is refused by name rather than ignored.
    for field, value in (("stream", "true"), ("include[]", "logprobs"), ("language", "ru"),
                         ("timestamp_granularities[]", "segment")):  # fmt: skip
        with jfk.open("rb") as f:
            r = client.post("/v1/audio/translations", files={"file": (jfk.name, f)},
                            data={"model": "whisper-1", field: value})  # fmt: skip
        error = openai_error(r, 422, "invalid_option", field.removesuffix("[]"))
        assert "not a field of /v1/audio/translations" in error["message"]
    openai_error(openai(client, jfk, stream="true", response_format="srt"), 422,
                 "invalid_option", "stream")  # fmt: skip
    openai_error(openai(client, jfk, response_format="text", **{"include[]": ["logprobs"]}),
                 422, "invalid_option", "include")  # fmt: skip
    missing = client.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    openai_error(missing, 422, "invalid_request", "file")  # no file: FastAPI names it
    assert client.get("/api/tasks").json()["total"] == 0
    models = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert {"base", "whisper-1"} <= models
    assert client.get("/v1/models/whisper-1").json()["id"] == "whisper-1"
    openai_error(client.get("/v1/models/gpt-9"), 404, "not_found", "model")
    # The other APIs keep their own shape for the same mistakes.
    assert_error(asr(client, jfk, output="pdf"), 422, "invalid_option")
    with jfk.open("rb") as f:
        other = client.post("/api/tasks", files={"file": (jfk.name, f)}, data={"language": "xx"})
    assert_error(other, 422, "invalid_option")


def test_a_failed_request_says_what_was_wrong(
    client: TestClient, eval_root: Path, tmp_path: Path
) -> None:
    def total() -> int:
        return int(client.get("/api/tasks").json()["total"])

    before = total()
    # A model no catalogue knows is refused before the upload is kept: no task is left.
    r = openai(client, eval_root / JFK, model="whisperr-large")
    assert_error(r, 422, "model_not_found")
    assert "installed here: base" in r.json()["error"]["message"]
    assert total() == before
    # A file found cut short by the worker answers as the task API names its reason.
    whole = (eval_root / JFK).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    r = openai(client, cut, language="en")
    assert_error(r, 415, "truncated_media")
    assert "cut.wav" in r.json()["error"]["message"]
    failed = client.get("/api/tasks", params={"status": "failed"}).json()
    assert failed["items"][0]["error_code"] == "truncated_media"


def test_asr_webservice_outputs(client: TestClient, eval_root: Path, tmp_path: Path) -> None:
    jfk = eval_root / JFK
    r = asr(client, jfk, output="srt", language="en", word_timestamps=True)
    assert r.status_code == 200, r.text
    assert 'filename="jfk.srt"' in r.headers["content-disposition"]
    assert "country" in " ".join(s.content for s in srt.parse(r.text)).lower()
    body = json.loads(asr(client, jfk, output="json").content)
    assert body["language"] == "en" and "country" in body["text"].lower()
    assert body["segments"][0]["words"] == []  # words only when asked for
    assert "country" in asr(client, jfk).text.lower()  # txt is the default output

    assert_error(asr(client, jfk, task="summarize"), 422, "invalid_option")
    assert_error(asr(client, jfk, output="pdf"), 422, "invalid_option")
    # Accepted, then found to hold no sound: the task's reason comes back, not a hang,
    # with the code the task API gives it.
    hollow = write_hollow_wav(tmp_path / "hollow.wav")
    r = asr(client, hollow, output="json")
    assert_error(r, 415, "empty_file")
    assert r.json()["error"]["message"] == "hollow.wav: the audio stream holds no sound (0 samples)"


def test_an_asr_repeat_is_not_answered_by_a_task_rerun_with_other_options(
    client: TestClient, eval_root: Path
) -> None:
    from tests.integration.test_api import wait

    jfk = eval_root / JFK
    query = {"output": "json", "language": "en", "initial_prompt": "a rerun check"}
    assert asr(client, jfk, **query).json()["language"] == "en"
    items = client.get("/api/tasks", params={"limit": 100}).json()["items"]
    made = [t for t in items if t["options"].get("initial_prompt") == "a rerun check"]
    assert len(made) == 1
    rerun = client.post(f"/api/tasks/{made[0]['id']}/rerun", data={"language": "de"})
    assert rerun.status_code == 202, rerun.text
    assert wait(client, made[0]["id"])["options"]["language"] == "de"
    # The task now holds a German reading: the same request is a new task, in English.
    again = asr(client, jfk, **query)
    assert again.status_code == 200 and again.json()["language"] == "en"
    items = client.get("/api/tasks", params={"limit": 100}).json()["items"]
    assert len([t for t in items if t["options"].get("initial_prompt") == "a rerun check"]) == 2


def test_waiting_endpoints_need_a_worker_and_a_key(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    jfk = eval_root / JFK
    with make_client(tmp_path / "a", model_cache, workers=0) as c:
        assert_error(openai(c, jfk), 503, "unavailable")
        assert openai(c, jfk).json()["error"]["type"] == "server_error"
        assert_error(asr(c, jfk), 503, "unavailable")
        assert c.get("/api/tasks").json()["total"] == 0
    with make_client(tmp_path / "b", model_cache, workers=1, api_keys="k1") as c:
        assert_error(openai(c, jfk), 401, "unauthorized")
        assert_error(c.get("/v1/models"), 401, "unauthorized")
        refused = c.get("/v1/models").json()["error"]  # as OpenAI answers a wrong key
        assert (refused["type"], refused["param"]) == ("invalid_request_error", None)
        ok = openai(c, jfk, headers={"Authorization": "Bearer k1"}, language="en")
        assert ok.status_code == 200 and "country" in ok.json()["text"].lower()
        # Bazarr takes only a URL: http://bazarr:k1@host sends the key as Basic credentials.
        with jfk.open("rb") as f:
            files = {"audio_file": (jfk.name, f)}
            found = c.post("/detect-language", files=files, auth=("bazarr", "k1"))
        assert found.status_code == 200 and found.json()["language_code"] == "en"
        with jfk.open("rb") as f:
            files = {"audio_file": (jfk.name, f)}
            refused = c.post("/detect-language", files=files, auth=("bazarr", "k2"))
        assert_error(refused, 401, "unauthorized")


def detect(c: TestClient, path: Path) -> Any:
    with path.open("rb") as f:
        return c.post("/detect-language", files={"audio_file": (path.name, f)})


def test_detect_language(client: TestClient, eval_root: Path, tmp_path: Path) -> None:
    en = detect(client, eval_root / JFK)
    assert en.status_code == 200, en.text
    body = en.json()
    assert (body["detected_language"], body["language_code"]) == ("english", "en")
    assert 0.5 < body["confidence"] <= 1.0
    ru_row = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru")
    ru = detect(client, eval_root / ru_row["path"]).json()
    assert (ru["detected_language"], ru["language_code"]) == ("russian", "ru")

    quiet = write_audio(tmp_path / "тишина.wav", np.zeros(16000 * 5, dtype=np.float32))
    none = detect(client, quiet)
    assert none.status_code == 200, none.text
    body = none.json()  # ISO 639's "undetermined", which Bazarr's babelfish reads
    assert (body["language_code"], body["detected_language"]) == ("und", "undetermined")
    assert body["confidence"] == 0.0
    assert body["reason"].startswith("тишина.wav: no speech was found in its first 10 minutes")
    fake = tmp_path / "notes.mp3"
    fake.write_text("not audio at all")
    refused = detect(client, fake)
    assert_error(refused, 415, "not_media")
    assert "notes.mp3" in refused.text and "/tmp" not in refused.text
    # Detection is not a task: nothing shows in the task list.
    assert client.get("/api/tasks").json()["total"] == 0


def test_an_asr_repeat_is_answered_when_the_quota_would_refuse_a_new_task(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    from sqlalchemy import update

    from transcriber.api.auth import create_key
    from transcriber.jobs.models import ApiKeyRow

    jfk = eval_root / JFK
    with make_client(tmp_path, model_cache, workers=1) as c:
        services = c.app.state.services  # type: ignore[attr-defined]
        key = create_key(services.jobs, "bazarr")
        auth = {"Authorization": f"Bearer {key}"}
        with jfk.open("rb") as f:
            files = {"audio_file": (jfk.name, f)}
            first = c.post("/asr", files=files, params={"output": "srt"}, headers=auth)
        assert first.status_code == 200, first.text
        with services.jobs.engine.begin() as conn:  # the day's minutes are now spent
            conn.execute(update(ApiKeyRow).values(minutes_per_day=0.05))

        def again(**params: Any) -> Any:
            with jfk.open("rb") as f:
                files = {"audio_file": (jfk.name, f)}
                return c.post("/asr", files=files, params=params, headers=auth)

        repeat = again(output="srt")  # nothing new to run: answered, in any output
        assert repeat.status_code == 200, repeat.text
        assert repeat.content == first.content
        assert "country" in again(output="txt").text.lower()
        refused = again(output="srt", task="translate")  # a new task: refused
        assert_error(refused, 429, "quota_exceeded")
        assert refused.headers["x-quota-minutes-remaining"] == "0.00"
        assert c.get("/api/tasks", headers=auth).json()["total"] == 1


def test_raw_pcm_has_the_duration_limit(tmp_path: Path, model_cache: Path) -> None:
    pcm = np.zeros(16000 * 6, "<i2").tobytes()  # 6 s of raw s16le mono 16 kHz
    with make_client(tmp_path, model_cache, workers=1, max_duration_s=5) as c:
        params = {"encode": "false", "output": "srt", "video_file": "/films/Long.mkv"}
        r = c.post("/asr", files={"audio_file": ("audio_file", pcm)}, params=params)
        assert_error(r, 413, "too_large")
        assert r.json()["error"]["message"] == "Long.mkv: media is 6 s long; the limit is 5 s"
        short = c.post("/detect-language", files={"audio_file": pcm[: 16000 * 2]},
                       params={"encode": "false"})  # fmt: skip
        assert short.status_code == 200 and short.json()["language_code"] == "und"
        assert c.get("/api/tasks").json()["total"] == 0
        assert list((tmp_path / "store").rglob("*.wav")) == []  # no WAV left behind
