"""Requests found by hand to crash the service or to be misread: each gets a 4xx that names
the problem, and a client that leaves mid-upload costs one log line."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import make_client
from tests.integration.live_server import live_app, raw_request
from tests.media_factory import write_audio


@pytest.fixture
def idle(tmp_path: Path, model_cache: Path) -> TestClient:
    with make_client(tmp_path, model_cache, workers=0) as c:
        yield c


def media(tmp_path: Path) -> bytes:
    return write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32)).read_bytes()


@pytest.mark.parametrize("field", ["audio_start_from", "audio_end_at"])
def test_a_huge_clip_time_is_refused_by_name(idle: TestClient, tmp_path: Path, field: str) -> None:
    url = idle.post("/v2/upload", content=media(tmp_path)).json()["upload_url"]
    for value in (10**309, 2**63, 604_800_001):
        r = idle.post("/v2/transcript", json={"audio_url": url, field: value})
        assert r.status_code == 400, r.text  # AssemblyAI's status for a field it cannot use
        assert field in r.json()["error"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_first_and_last_days_are_refused_by_name(idle: TestClient, day: str) -> None:
    r = idle.get("/v2/transcript", params={"created_on": day})
    assert r.status_code == 400, r.text
    assert "created_on" in r.json()["error"] and "out of range" in r.json()["error"]
    assert idle.get("/v2/transcript", params={"created_on": "9999-12-30"}).status_code == 200


def test_a_day_or_words_not_in_their_form_are_named_in_words(idle: TestClient) -> None:
    # Not pydantic's "String should match pattern '^\d{4}-…'".
    r = idle.get("/v2/transcript", params={"created_on": "abc"})
    assert (
        r.status_code == 400 and r.json()["error"] == "created_on 'abc' is not a day (YYYY-MM-DD)"
    )
    r = idle.get("/v2/transcript/some-id/word-search", params={"words": " , "})
    assert r.status_code == 400 and "give at least one word" in r.json()["error"], r.text


def test_form_fields_must_be_utf8(idle: TestClient, tmp_path: Path) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'.encode()
        + "Привет".encode("cp1251")  # Latin-1 would read it as "Ïðèâåò"
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file";'
        f' filename="a.wav"\r\n\r\n'.encode()
        + media(tmp_path)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    kind = {"content-type": f"multipart/form-data; boundary={boundary}"}
    r = idle.post("/api/tasks", content=body, headers=kind)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith("form field 'prompt' is not text (not valid")
    bad_name = body.replace(b'filename="a.wav"', 'filename="запись.wav"'.encode("cp1251"))
    r = idle.post("/api/tasks", content=bad_name.replace("Привет".encode("cp1251"), b"ok"),
                  headers=kind)  # fmt: skip
    assert r.status_code == 422 and "the file name is not valid UTF-8" in r.text
    form = "url=http%3A%2F%2Fexample.com%2Fa.mp3&prompt=%CF%F0%E8"  # cp1251 percent-encoded
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    r = idle.post("/api/tasks", content=form, headers=urlencoded)
    assert r.status_code == 422 and "not valid UTF-8" in r.text
    assert idle.get("/api/tasks").json()["total"] == 0


def multipart(disposition: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("route", ["/api/tasks", "/v1/audio/transcriptions"])
def test_a_file_sent_without_a_file_name_is_explained(
    idle: TestClient, tmp_path: Path, route: str
) -> None:
    # curl -F 'file=<a.wav' (a typo for @) sends the bytes as a text field.
    body, kind = multipart('form-data; name="file"', media(tmp_path))
    r = idle.post(route, content=body, headers=kind)
    assert r.status_code == 422, r.text
    assert "-F 'file=@PATH'" in r.text and "without a filename" in r.text
    assert idle.get("/api/tasks").json()["total"] == 0


@pytest.mark.parametrize(
    ("route", "field"),
    [("/api/tasks", "file"), ("/v1/audio/transcriptions", "file"),
     ("/v1/audio/translations", "file"), ("/asr", "audio_file"),
     ("/detect-language", "audio_file")],
)  # fmt: skip
def test_a_file_name_sent_as_text_is_explained(idle: TestClient, route: str, field: str) -> None:
    # curl -F 'file=a.wav' (the @ forgotten) sends the name as text: the answer says how
    # to send a file, in the client's terms, not pydantic's "Expected UploadFile".
    r = idle.post(route, data={field: "a.wav"})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "UploadFile" not in message and "class" not in message, message
    assert f"{field}: must be a file" in message or "-F 'file=@PATH'" in message, message


def test_a_field_given_twice_is_refused_unless_it_takes_a_list(
    idle: TestClient, tmp_path: Path
) -> None:
    # language=en then language=ru: the last one won without a word.
    file = {"file": ("a.wav", media(tmp_path))}
    for route, fields, twice in [
        ("/api/tasks", {"language": ["en", "ru"]}, "language"),
        ("/v1/audio/transcriptions",
         {"model": "whisper-1", "response_format": ["json", "text"]}, "response_format"),
    ]:  # fmt: skip
        r = idle.post(route, data=fields, files=file)
        assert r.status_code == 422, r.text
        assert f"form field '{twice}' is given 2 times" in r.text, r.text
    listed = {"model": "whisper-1", "response_format": "verbose_json",
              "timestamp_granularities[]": ["word", "segment"]}  # fmt: skip
    r = idle.post("/v1/audio/transcriptions", data=listed, files=file)
    assert "given 2 times" not in r.text, r.text
    assert idle.get("/api/tasks").json()["total"] == 0


def test_an_extended_file_name_alone_names_the_file(idle: TestClient, tmp_path: Path) -> None:
    name = "%D0%B7%D0%B0%D0%BF%D0%B8%D1%81%D1%8C.wav"  # запись.wav
    body, kind = multipart(f"form-data; name=\"file\"; filename*=UTF-8''{name}", media(tmp_path))
    r = idle.post("/api/tasks", content=body, headers=kind)
    assert r.status_code == 202, r.text
    assert r.json()["filename"] == "запись.wav"
    odd, kind = multipart("form-data; name=\"file\"; filename*=no-such-charset''a.wav", b"x")
    r = idle.post("/api/tasks", content=odd, headers=kind)
    assert r.status_code == 422 and "charset" in r.text


def test_a_five_thousand_character_file_name_is_taken(idle: TestClient, tmp_path: Path) -> None:
    name = "лекция " * 714 + ".wav"  # 5002 characters, 9.3 KB of UTF-8
    r = idle.post("/api/tasks", files={"file": (name, media(tmp_path))})
    assert r.status_code == 202, r.text
    kept = r.json()["filename"]
    assert len(kept) == 200 and kept.endswith(".wav") and kept.startswith("лекция лекция")


def test_a_client_leaving_mid_upload_costs_one_log_line(
    tmp_path: Path, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with live_app(tmp_path, model_cache, workers=0) as (url, _):
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for route, body, kind in (
            ("/v2/upload", b"RIFF" + bytes(5000), "application/octet-stream"),  # the raw file
            ("/api/tasks", part + b"RI", "multipart/form-data; boundary=b"),
        ):
            head = (f"POST {route} HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
                    f"Content-Type: {kind}")  # fmt: skip
            conn = raw_request(url, head, body)
            conn.close()  # gone, 5 KB into 10 MB
            deadline = time.monotonic() + 10
            while not [r for r in caplog.records if route in r.getMessage()
                       and "client left" in r.getMessage()]:  # fmt: skip
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.05)
        assert httpx.get(f"{url}/health").status_code == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]


def test_a_json_body_that_is_not_json_or_not_an_object_is_named(idle: TestClient) -> None:
    # A JSON route's body is checked before the task is looked up: no task is needed.
    url = "/api/tasks/no-such-task/transcript"
    r = idle.patch(url, content=b'{"revision": 0,', headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith("the request body is not valid JSON")
    r = idle.patch(url, json=[1, 2])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == "the request body must be a JSON object"


def test_a_misspelt_or_foreign_field_is_named_not_dropped(idle: TestClient, tmp_path: Path) -> None:
    """`num_speakers=3` was taken without a word and the speakers left to be guessed."""
    audio = {"file": ("a.wav", media(tmp_path))}
    r = idle.post("/api/tasks", files=audio, data={"diarize": "true", "num_speakers": "3"})
    assert r.status_code == 422, r.text
    said = r.json()["error"]["message"]
    assert said.startswith("unknown form field 'num_speakers' (did you mean 'speakers'?)"), said
    r = idle.post("/api/tasks", files=audio, data={"langauge": "en", "colour": "red"})
    said = r.json()["error"]["message"]
    assert r.status_code == 422 and "fields 'colour', 'langauge' (did you mean 'language'?)" in said
    assert "takes beam_size, channels, diarize" in said
    # The same for a URL sent as a plain form.
    r = idle.post("/api/tasks", data={"url": "https://example.com/a.mp3", "initial_prompt": "x"})
    assert r.status_code == 422 and "'initial_prompt' (did you mean 'prompt'?)" in r.text
    assert idle.get("/api/tasks").json()["total"] == 0  # nothing was queued
    # `formats`, which older versions took, is still taken (and ignored).
    ok = idle.post("/api/tasks", files=audio, data={"formats": "srt", "speakers": "2"})
    assert ok.status_code == 202, ok.text


def test_retry_and_rerun_refuse_what_they_do_not_take(idle: TestClient, tmp_path: Path) -> None:
    """Both answered 202 and dropped a misspelt option, a new task's option (a private
    webhook among them) or a body of the other kind without a word."""
    made = idle.post("/api/tasks", files={"file": ("a.wav", media(tmp_path))})
    assert made.status_code == 202, made.text
    tid = made.json()["id"]
    assert idle.post(f"/api/tasks/{tid}/cancel").status_code == 200

    def refused(r: httpx.Response, *said: str) -> None:
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert all(s in message for s in said), message

    retry = f"/api/tasks/{tid}/retry"
    refused(idle.post(retry, json={"languag": "ru"}), "'languag' (did you mean 'language'?)",
            "a retry takes channels, diarize, language")  # fmt: skip
    refused(idle.post(retry, json={"language": "ru", "num_speakers": 2}),
            "'num_speakers' (did you mean 'speakers'?)")  # fmt: skip
    new_task = {"beam_size": 3, "start": "1", "webhook": "http://10.1.1.1/"}
    refused(idle.post(retry, json=new_task), "cannot change 'beam_size', 'start', 'webhook'")
    refused(idle.post(retry, data={"language": "ru"}), "Content-Type: application/json")
    refused(idle.post(retry, json={"language": "xx"}), "language 'xx'")
    many = {f"option{i}": 1 for i in range(5000)}
    r = idle.post(retry, json=many)
    refused(r, "and 4995 more")
    assert len(r.text) < 500
    assert idle.get(f"/api/tasks/{tid}").json()["status"] == "cancelled"  # none of it ran
    ok = idle.post(retry, json={"language": "ru"})
    assert ok.status_code == 202 and ok.json()["options"]["language"] == "ru", ok.text

    # rerun takes form fields; its task is queued, so what it does take gets 409
    rerun = f"/api/tasks/{tid}/rerun"
    refused(idle.post(rerun, data={"languag": "ru"}), "'languag' (did you mean 'language'?)")
    refused(idle.post(rerun, json={"language": "ru"}), "takes form fields", "application/json")
    refused(idle.post(rerun, files={"file": ("a.wav", b"x")}), "unknown form field 'file'")
    assert idle.post(rerun, data={"language": "ru", "diarize": "true"}).status_code == 409
    assert idle.post(rerun).status_code == 409
