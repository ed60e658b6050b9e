"""`WS /ws/live` against a real `transcriber serve`: real speech at real time and faster,
the events in order, partials that become finals, the saved task and its exports, the
limit on sessions, and bad input (an error with its reason, then a close frame)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import time
import wave
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import websockets
import webvtt

from tests.conftest import eval_rows
from tests.integration.live_server import live_app
from tests.integration.test_serve import Server
from tests.media_factory import load
from transcriber.evaluation.wer import corpus_wer, normalize
from transcriber.live.client import LiveRun, frames, live_url, stream

pytestmark = pytest.mark.slow

RU_16K = "ru_more/asterisk_ru/core/agent-newlocation.wav"  # 7.8 s, one long utterance
RU_PHONE = "ru_more/asterisk_ru/core/vm-intro.wav"  # 6.1 s, 8 kHz telephony
EN = "en/whisper/jfk.flac"  # 11 s, pauses between phrases


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("live"), model_cache)
    s.env["TRANSCRIBER_MAX_LIVE_SESSIONS"] = "1"
    s.start()
    yield s
    s.kill()


def reference(path: str) -> str:
    return next(r["text"] for r in eval_rows("asr.jsonl") if r["path"] == path)


def pcm16(eval_root: Path, path: str) -> bytes:
    audio = load(eval_root / path)
    return bytes((audio.clip(-1, 1) * 32767).astype("<i2").tobytes())


def send(server: Server, data: bytes, rate: int = 16000, speed: float = 1.0,
         **start: Any) -> LiveRun:  # fmt: skip
    message = {"type": "start", "sample_rate": rate} | start
    width = 1 if start.get("encoding") in ("mulaw", "alaw") else 2
    return asyncio.run(
        stream(live_url(server.url), message, frames(data, rate * width), rate * width, speed)
    )


def check_order(run: LiveRun) -> None:
    """ready first, done last; per utterance: started < partials < stopped < its finals."""
    kinds = [m["type"] for _, m in run.messages]
    assert kinds[0] == "ready" and kinds[-1] == "done", kinds
    assert kinds.count("done") == 1 and "error" not in kinds, kinds
    seen: dict[int, list[str]] = {}
    for _, m in run.messages[1:-1]:
        seen.setdefault(m["utterance"], []).append(m["type"])
    assert seen, "no utterance was heard"
    for utterance, order in seen.items():
        assert order[0] == "speech_started", (utterance, order)
        assert order.count("speech_stopped") == 1, (utterance, order)
        stopped = order.index("speech_stopped")
        assert "speech_started" not in order[1:]
        assert "partial" not in order[stopped:], (utterance, order)  # nothing tentative after
    numbers = [m["utterance"] for _, m in run.messages if m["type"] == "final"]
    assert numbers == sorted(numbers)
    ids = [m["id"] for _, m in run.messages if m["type"] == "final"]
    assert ids == list(range(1, len(ids) + 1))


def partials_become_finals(run: LiveRun, lang: str) -> None:
    """Each utterance's last partial is, give or take a word, how its finals begin."""
    last: dict[int, str] = {}
    finals: dict[int, list[str]] = {}
    for _, m in run.messages:
        if m["type"] == "partial" and m["text"]:
            last[m["utterance"]] = m["text"]
        elif m["type"] == "final":
            finals.setdefault(m["utterance"], []).append(m["text"])
    assert last, "no partial came"
    for utterance, text in last.items():
        # Letters, not words: a partial may split a word the final keeps whole ("на
        # берите" / "наберите") or end it otherwise ("клавишей" / "клавиши").
        said = "".join(normalize(text, lang))
        final = "".join(normalize(" ".join(finals[utterance]), lang))[: len(said)]
        assert SequenceMatcher(None, said, final).ratio() > 0.8, (text, final)


def check_saved(server: Server, run: LiveRun, seconds: float, rate: int) -> dict[str, Any]:
    done = run.of_type("done")[0]
    task_id = done["task_id"]
    assert task_id == run.of_type("ready")[0]["task_id"]
    task = server.task(task_id)
    assert task["status"] == "completed" and task["filename"].startswith("live-")
    assert task["filename"].endswith(".wav") and task["options"]["live"]["protocol"] == "ws"
    assert abs(task["duration"] - seconds) < 0.2
    listed = httpx.get(f"{server.url}/api/tasks").json()["items"]
    assert task_id in [t["id"] for t in listed]
    media = httpx.get(f"{server.url}/api/tasks/{task_id}/media")
    with wave.open(io.BytesIO(media.content)) as w:  # the audio as it came, at its own rate
        assert w.getframerate() == rate and abs(w.getnframes() / rate - seconds) < 0.05
    doc = server.result(task_id)
    assert doc["text"] == done["transcript"]["text"]
    finals = [m["text"] for m in run.of_type("final")]
    assert doc["text"] == " ".join(finals)
    base = f"{server.url}/api/tasks/{task_id}/result"
    assert [c.content for c in srt.parse(httpx.get(base, params={"format": "srt"}).text)]
    assert webvtt.from_string(httpx.get(base, params={"format": "vtt"}).text).captions
    for fmt in ("txt", "tsv", "docx"):
        assert httpx.get(base, params={"format": fmt}).content
    renamed = httpx.get(
        f"{base.rsplit('/', 1)[0]}/export",
        params={"format": "json", "speaker_names": '{"A": "Анна"}'},
    )
    assert renamed.status_code == 200 and json.loads(renamed.content)["text"] == doc["text"]
    return doc


def test_russian_at_real_time(server: Server, eval_root: Path) -> None:
    data = pcm16(eval_root, RU_16K)
    run = send(server, data, language="ru")
    check_order(run)
    partials_become_finals(run, "ru")
    text = " ".join(m["text"] for m in run.of_type("final"))
    assert corpus_wer([(reference(RU_16K), text)], "ru") < 0.35, text
    assert run.close_code == 1000
    check_saved(server, run, len(data) / 32000, 16000)
    # Finals come soon after the speech ends (a generous bound: the box is shared).
    for m in run.of_type("speech_stopped"):
        final_at = next(
            t for t, f in run.messages if f["type"] == "final" and f["utterance"] == m["utterance"]
        )
        assert final_at - run.sent_at(m["at"]) < 8.0


def test_english_at_four_times_real_time_with_language_detected(
    server: Server, eval_root: Path
) -> None:
    data = pcm16(eval_root, EN)
    started = time.monotonic()
    run = send(server, data, speed=4.0)  # language auto
    assert time.monotonic() - started >= 11.0 / 4  # paced, not dumped
    check_order(run)
    text = " ".join(m["text"] for m in run.of_type("final"))
    assert corpus_wer([(reference(EN), text)], "en") < 0.25, text
    doc = check_saved(server, run, 11.0, 16000)
    assert doc["language"] == "en" and 0.5 < doc["language_probability"] <= 1.0


def test_telephony_mulaw_at_four_times(server: Server, eval_root: Path) -> None:
    with wave.open(str(eval_root / RU_PHONE)) as w:
        samples = w.readframes(w.getnframes())
    law = _mulaw(samples)
    run = send(server, law, rate=8000, speed=4.0, encoding="mulaw", language="ru")
    check_order(run)
    text = " ".join(m["text"] for m in run.of_type("final"))
    assert corpus_wer([(reference(RU_PHONE), text)], "ru") < 0.4, text
    check_saved(server, run, len(law) / 8000, 8000)


def _mulaw(pcm: bytes) -> bytes:
    """G.711 μ-law bytes of 16-bit samples, through ffmpeg's encoder."""
    import av
    import numpy as np

    samples = np.frombuffer(pcm, "<i2").reshape(1, -1)
    codec = av.CodecContext.create("pcm_mulaw", "w")
    codec.sample_rate, codec.layout, codec.format = 8000, "mono", "s16"
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = 8000
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


async def _exchange(url: str, first: str | bytes, then: list[str | bytes] | None = None) -> tuple[
    list[dict[str, Any]], int | None, str
]:  # fmt: skip
    messages = []
    async with websockets.connect(url) as ws:
        try:
            await ws.send(first)
            for item in then or []:
                await ws.send(item)
            async with asyncio.timeout(120):
                async for raw in ws:
                    messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            async with asyncio.timeout(120):
                while True:  # what the server sent before it closed
                    try:
                        messages.append(json.loads(await ws.recv()))
                    except websockets.ConnectionClosed:
                        break
        return messages, ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize(
    ("first", "code", "says"),
    [
        (b"\x00\x01" * 800, 1008, "the first message must be JSON text"),
        ('{"type": "begin"}', 1008, "bad start message: type"),
        ('{"type": "start", "sample_rate": 44100}', 1003, "sample_rate 44100 is not supported"),
        ('{"type": "start", "encoding": "opus"}', 1003, "encoding 'opus' is not supported"),
        ('{"type": "start", "language": "xx"}', 1003, "language 'xx'"),
        ('{"type": "start", "rate": 16000}', 1008, "rate: Extra inputs are not permitted"),
    ],
)
def test_a_bad_start_gets_an_error_and_a_close(
    server: Server, first: str | bytes, code: int, says: str
) -> None:
    messages, closed, reason = asyncio.run(_exchange(live_url(server.url), first))
    assert [m["type"] for m in messages] == ["error"]
    assert (says in messages[0]["error"]["message"] and says in reason) or len(reason) >= 100
    assert closed == code


def test_a_non_audio_frame_ends_the_session_and_keeps_the_audio(
    server: Server, eval_root: Path
) -> None:
    audio = pcm16(eval_root, RU_16K)[: 32000 * 2]
    start = json.dumps({"type": "start", "language": "ru"})
    wav = (eval_root / RU_16K).read_bytes()[:4000]  # a WAV file sent as if it were samples
    messages, code, reason = asyncio.run(
        _exchange(live_url(server.url), start, [*frames(audio, 32000), wav])
    )
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "ready" and "error" in kinds and kinds[-1] == "done", kinds
    error = messages[kinds.index("error")]["error"]
    assert error["code"] == "not_audio" and "holds a WAV file" in error["message"]
    assert code == 1003 and "WAV" in reason
    task = server.task(messages[-1]["task_id"])  # the two seconds that came are kept
    assert task["status"] == "completed" and abs(task["duration"] - 2.0) < 0.05
    unknown = json.dumps({"type": "pause"})
    messages, code, _ = asyncio.run(_exchange(live_url(server.url), start, [unknown]))
    assert "unknown message type 'pause'" in messages[1]["error"]["message"] and code == 1008
    assert messages[-1]["type"] == "done" and messages[-1]["task_id"] is None  # no audio, no task


def test_a_vanished_client_leaves_its_audio_saved_and_no_session_behind(
    server: Server, eval_root: Path
) -> None:
    data = pcm16(eval_root, EN)[: 32000 * 5]  # five seconds: JFK is mid-sentence there
    before = {t["id"] for t in httpx.get(f"{server.url}/api/tasks").json()["items"]}
    run = asyncio.run(
        stream(
            live_url(server.url),
            {"type": "start", "language": "en"},
            frames(data, 32000),
            32000,
            speed=2.0,
            stop=False,
        )
    )
    task_id = run.of_type("ready")[0]["task_id"]
    assert task_id not in before
    deadline = time.monotonic() + 60
    while (state := httpx.get(f"{server.url}/api/tasks/{task_id}")).status_code == 404:
        assert time.monotonic() < deadline, "the session was not saved"
        time.sleep(0.2)
    task = state.json()
    assert task["status"] == "completed" and abs(task["duration"] - 5.0) < 0.1
    assert "fellow americans" in server.result(task_id)["text"].lower()
    # Its place was given back: the limit is 1, and a new session is taken.
    again = send(server, pcm16(eval_root, RU_16K)[:32000], language="ru", speed=0)
    assert again.of_type("ready") and again.close_code == 1000


def test_sessions_over_the_limit_are_refused_with_1013(server: Server, eval_root: Path) -> None:
    async def both() -> tuple[LiveRun, tuple[list[dict[str, Any]], int | None, str]]:
        first = asyncio.create_task(
            stream(
                live_url(server.url),
                {"type": "start", "language": "ru"},
                frames(pcm16(eval_root, RU_16K), 32000),
                32000,
            )
        )
        await asyncio.sleep(1.5)  # the first session is under way (paced at real time)
        second = await _exchange(live_url(server.url), json.dumps({"type": "start"}))
        return await first, second

    first, (messages, code, reason) = asyncio.run(both())
    assert first.close_code == 1000 and first.of_type("done")
    assert messages[0]["error"]["code"] == "too_many_sessions" and code == 1013
    assert "all 1 live sessions are in use" in reason


def test_a_session_that_cannot_start_gives_its_place_back(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    """The temporary folder vanishes under a running server (a tmpfs cleaned): the
    session that cannot write its recording is refused with the reason, and its place
    and the model are given back (with a limit of 1, every later session was refused
    as "all 1 live sessions are in use", until a restart)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "server").mkdir()
    s = Server(tmp_path / "server", model_cache)
    s.env["TMPDIR"] = str(temp)
    s.env["TRANSCRIBER_MAX_LIVE_SESSIONS"] = "1"
    s.start()
    second = pcm16(eval_root, RU_16K)[:32000]
    try:
        first = send(s, second, language="ru", speed=0)  # the server now writes in `temp`
        assert first.of_type("ready") and first.close_code == 1000
        shutil.rmtree(temp)
        start = json.dumps({"type": "start", "language": "ru"})
        messages, code, reason = asyncio.run(_exchange(live_url(s.url), start))
        assert messages and messages[0].get("error", {}).get("code") == "unavailable", messages
        assert "the live recording cannot be written" in reason and code == 1013
        temp.mkdir()
        again = send(s, second, language="ru", speed=0)
        assert again.of_type("ready") and again.close_code == 1000
    finally:
        s.kill()


def test_keys_apply(tmp_path: Path, model_cache: Path) -> None:
    s = Server(tmp_path, model_cache)
    s.env["TRANSCRIBER_API_KEYS"] = "k1"
    s.start()
    try:
        start = json.dumps({"type": "start"})
        messages, code, _ = asyncio.run(_exchange(live_url(s.url), start))
        assert code == 4401 and messages[0]["error"]["code"] == "unauthorized"
        run = asyncio.run(
            stream(live_url(s.url, token="k1"), {"type": "start"}, [bytes(32000)], 32000, 0)
        )
        assert run.of_type("done") and run.close_code == 1000
        headers = {"Authorization": "Bearer k1"}
        task = httpx.get(f"{s.url}/api/tasks/{run.of_type('done')[0]['task_id']}", headers=headers)
        assert task.status_code == 200 and task.json()["duration"] == pytest.approx(1.0)
    finally:
        s.kill()


def test_a_live_task_is_transcribed_again_offline_as_a_new_version(
    server: Server, eval_root: Path
) -> None:
    run = send(server, pcm16(eval_root, RU_16K), language="ru", speed=0)
    task_id = run.of_type("done")[0]["task_id"]
    live_text = server.result(task_id)["text"]
    r = httpx.post(f"{server.url}/api/tasks/{task_id}/rerun", data={"diarize": "true"})
    # queued again (the worker may have taken it already by the time the view is read)
    assert r.status_code == 202 and r.json()["status"] in ("queued", "processing"), r.text
    again = httpx.post(f"{server.url}/api/tasks/{task_id}/rerun")
    assert again.status_code == 409  # not while it runs
    state = server.wait(task_id)
    assert state["status"] == "completed" and state["options"]["diarize"] is True
    assert state["options"]["live"]["protocol"] == "ws"  # still the live session's task
    offline = server.result(task_id)
    assert corpus_wer([(reference(RU_16K), offline["text"])], "ru") < 0.35
    assert {s["speaker"] for s in offline["segments"]} == {"A"}
    versions = httpx.get(f"{server.url}/api/tasks/{task_id}/versions").json()["items"]
    assert [(v["version"], v["source"]) for v in versions] == [(1, "live")]
    base = f"{server.url}/api/tasks/{task_id}/versions/1"
    assert httpx.get(base).json()["text"] == live_text
    srt_text = httpx.get(base, params={"format": "srt"})
    assert 'filename="live-' in srt_text.headers["content-disposition"]
    assert list(srt.parse(srt_text.text))
    assert httpx.get(f"{server.url}/api/tasks/{task_id}/versions/2").status_code == 404


def test_a_session_is_cut_at_the_duration_limit_and_kept(
    tmp_path: Path, model_cache: Path, eval_root: Path
) -> None:
    """Audio past TRANSCRIBER_MAX_DURATION_S is not taken: the session ends with
    `too_large` and 1009, and the audio up to the limit is saved."""
    with live_app(tmp_path, model_cache, workers=0, max_duration_s=2.0) as (url, _):
        data = pcm16(eval_root, EN)
        start = {"type": "start", "language": "en"}
        run = asyncio.run(stream(live_url(url), start, frames(data, 32000), 32000, speed=0))
    assert run.close_code == 1009, run.messages
    assert run.of_type("error")[0]["error"]["code"] == "too_large"
    done = run.of_type("done")[0]
    assert done["task"]["duration"] == pytest.approx(2.0, abs=0.01)
