"""whisper-asr-webservice's endpoints as Bazarr calls them, against a live service.

Bazarr's Whisper provider (subliminal_patch/providers/whisperai.py) extracts the audio
itself as headerless s16le mono 16 kHz and posts it with `requests`: the multipart
field `audio_file` holding bare bytes, the query `encode=false` and `video_file` (a set
holding the video's path, or None), to `/detect-language` and then to
`/asr?task=…&language=…&output=srt`. These tests send exactly that.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import srt

from tests.conftest import eval_rows
from tests.integration.live_api import Server
from tests.media_factory import load, raw_pcm, write_audio

pytestmark = pytest.mark.slow

JFK = "en/whisper/jfk.flac"
VIDEO = "/media/Фильмы/Брат (1997)/Брат.mkv"  # Bazarr passes the video's own path


@pytest.fixture
def server(tmp_path: Path, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path, model_cache)
    s.env["TRANSCRIBER_WORKERS"] = "2"
    s.env.pop("TRANSCRIBER_BATCH_SIZE")
    s.start()
    yield s
    s.kill()


def bazarr() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "Subliminal/2.1.0"
    return session


def detect(s: requests.Session, url: str, pcm: bytes, video: str | None = VIDEO) -> Any:
    return s.post(
        f"{url}/detect-language",
        params={"encode": "false", "video_file": {video}},
        files={"audio_file": pcm},
        timeout=(5, 600),
    )


def asr(
    s: requests.Session,
    url: str,
    pcm: bytes,
    task: str,
    language: str,
    timeout: float = 600,
    **more: str,
) -> Any:
    params = {"task": task, "language": language, "output": "srt", "encode": "false"}
    return s.post(
        f"{url}/asr",
        params={**params, "video_file": {VIDEO}, **more},
        files={"audio_file": pcm},
        timeout=(5, timeout),
    )


def tasks(server: Server) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = requests.get(f"{server.url}/api/tasks", timeout=10).json()[
        "items"
    ]
    return items


def metric(server: Server, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def russian_call(eval_root: Path) -> np.ndarray:
    """100 s of Russian: ten clips of several speakers, half a second apart."""
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:10]
    gap = np.zeros(8000, np.float32)
    return np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), gap)])


def wait_for(check: Callable[[], Any], limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower().replace("ё", "е")))


def test_bazarr_detects_then_transcribes_and_translates_raw_pcm(
    server: Server, eval_root: Path
) -> None:
    ru = next(r for r in eval_rows("asr.jsonl") if r["path"] == "ru/coqui_stt/ru.wav")
    en = next(r for r in eval_rows("asr.jsonl") if r["path"] == JFK)
    s = bazarr()
    for row, code, name in ((ru, "ru", "russian"), (en, "en", "english")):
        pcm = raw_pcm(eval_root / row["path"])
        found = detect(s, server.url, pcm).json()
        assert (found["language_code"], found["detected_language"]) == (code, name), found
        assert 0.5 < found["confidence"] <= 1.0
        # Without "pass video name", Bazarr's set holds None and requests sends no video_file.
        assert detect(s, server.url, pcm, video=None).json()["language_code"] == code

        r = asr(s, server.url, pcm, "transcribe", code)
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"].startswith('attachment; filename="')
        assert "filename*=UTF-8''%D0%91%D1%80%D0%B0%D1%82.srt" in r.headers["content-disposition"]
        assert r.headers["asr-engine"] == "video-transcriber"
        subs = list(srt.parse(r.content.decode()))  # Bazarr stores r.content as the .srt
        assert subs and all(a.start <= b.start for a, b in itertools.pairwise(subs))
        assert subs[-1].end.total_seconds() <= row["duration_s"] + 0.5
        heard = words(" ".join(sub.content for sub in subs))
        assert len(heard & words(row["text"])) >= len(words(row["text"])) // 2, heard

    # Bazarr translates when the wanted subtitle language (English) is not the audio's.
    pcm = raw_pcm(eval_root / ru["path"])
    r = asr(s, server.url, pcm, "translate", "ru")
    assert r.status_code == 200, r.text
    english = " ".join(sub.content for sub in srt.parse(r.text))
    assert re.search(r"[a-zA-Z]{3}", english) and not re.search(r"[а-яА-ЯёЁ]", english)

    made = tasks(server)  # each /asr is a task, named after the video; detections are not
    assert len(made) == 3 and {t["filename"] for t in made} == {"Брат.mkv"}
    assert {t["status"] for t in made} == {"completed"}


def test_detect_language_answers_while_two_long_transcriptions_run(
    server: Server, eval_root: Path, tmp_path: Path
) -> None:
    long = write_audio(tmp_path / "long.wav", np.tile(russian_call(eval_root), 8))  # 13 min
    running = [server.upload(long, language="ru")["id"] for _ in range(2)]

    def transcribing() -> bool:  # both past their first windows, in the model
        states = [server.task(t) for t in running]
        assert all(t["status"] in ("queued", "processing") for t in states), states
        return all(t["stage"] == "transcribing" for t in states)

    wait_for(transcribing)
    s = bazarr()
    pcm = raw_pcm(eval_root / JFK)
    for _ in range(3):
        started = time.monotonic()
        found = detect(s, server.url, pcm).json()
        took = time.monotonic() - started
        assert found["language_code"] == "en"
        assert took < 5.0, f"detection took {took:.1f} s behind two transcriptions"
    states = [server.task(t) for t in running]
    assert [t["status"] for t in states] == ["processing", "processing"], states
    assert len(tasks(server)) == 2  # detection is no task


def test_a_repeat_after_a_client_timeout_is_answered_without_transcribing_again(
    server: Server, eval_root: Path, tmp_path: Path
) -> None:
    pcm = raw_pcm(write_audio(tmp_path / "call.wav", russian_call(eval_root)))
    s = bazarr()
    with pytest.raises(requests.exceptions.ReadTimeout):
        asr(s, server.url, pcm, "transcribe", "ru", timeout=1.0)
    wait_for(lambda: tasks(server))  # the upload was whole: its task is made all the same
    (first,) = tasks(server)
    assert first["status"] in ("queued", "processing")  # hanging up did not cancel it
    # Asked again while it runs, the request waits for that same task.
    again = asr(s, server.url, pcm, "transcribe", "ru")
    assert again.status_code == 200, again.text
    (done,) = tasks(server)
    assert (done["id"], done["status"], done["attempts"]) == (first["id"], "completed", 1)
    transcribed = metric(server, "transcriber_audio_seconds_total")
    assert transcribed > 60

    # Once finished, a repeat is answered from the stored transcript, in any output.
    repeat = asr(s, server.url, pcm, "transcribe", "ru")
    assert repeat.status_code == 200 and repeat.content == again.content
    text = asr(s, server.url, pcm, "transcribe", "ru", output="txt")
    assert text.status_code == 200
    assert words(text.text) == words(" ".join(x.content for x in srt.parse(again.text)))
    # The same audio sent for another video (a copy of the film) is named for that one.
    copy = asr(s, server.url, pcm, "transcribe", "ru", video_file={"/films/Brat.mkv"})
    assert copy.status_code == 200 and copy.content == again.content
    assert 'filename="Brat.srt"' in copy.headers["content-disposition"]
    assert len(tasks(server)) == 1
    assert metric(server, "transcriber_audio_seconds_total") == transcribed  # no new work
    assert metric(server, "transcriber_reused_results_total") == 4

    # Other options make another request: it is transcribed.
    other = asr(s, server.url, pcm, "translate", "ru")
    assert other.status_code == 200 and len(tasks(server)) == 2
    assert metric(server, "transcriber_audio_seconds_total") > transcribed


def test_bad_raw_pcm_gets_a_clear_4xx_and_the_server_stays_up(
    server: Server, eval_root: Path
) -> None:
    s = bazarr()
    wav = (eval_root / "ru/coqui_stt/ru.wav").read_bytes()
    cases = [
        (b"\x00\x01\x02", 415, "not_media", "3 bytes is not a whole number of 16-bit samples"),
        (b"", 415, "empty_file", "the upload is empty (0 bytes)"),
        (wav, 415, "not_media", "this is a WAV file, not raw PCM"),
    ]
    for body, status, code, says in cases:
        for r in (detect(s, server.url, body), asr(s, server.url, body, "transcribe", "ru")):
            assert r.status_code == status, r.text
            error = r.json()["error"]
            assert error["code"] == code and error["message"].startswith("Брат.mkv: ")
            assert says in error["message"] and "encode=true" in error["message"]
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    assert tasks(server) == []
    found = detect(s, server.url, raw_pcm(eval_root / JFK)).json()
    assert found["language_code"] == "en"


def test_an_openai_client_that_hangs_up_still_cancels_its_task(
    server: Server, eval_root: Path, tmp_path: Path
) -> None:
    call = write_audio(tmp_path / "call.wav", russian_call(eval_root))
    with pytest.raises(requests.exceptions.ReadTimeout), call.open("rb") as f:
        requests.post(
            f"{server.url}/v1/audio/transcriptions",
            files={"file": (call.name, f)},
            data={"model": "whisper-1", "language": "ru"},
            timeout=(5, 1.0),
        )
    wait_for(lambda: [t["status"] for t in tasks(server)] == ["cancelled"], limit_s=60)
