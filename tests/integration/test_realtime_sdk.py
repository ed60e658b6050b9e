"""OpenAI's own Python SDK (`client.realtime.connect`) against `WS /v1/realtime` of a live
`transcriber serve`: a transcription session with server VAD at real time, and one
with turn detection off that commits by hand."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai as openai_sdk
import pytest

from tests.conftest import eval_rows
from tests.integration.test_serve import Server
from tests.media_factory import load, resample
from transcriber.evaluation.wer import corpus_wer, normalize

pytestmark = pytest.mark.slow

RU = "ru_more/asterisk_ru/core/agent-newlocation.wav"  # 7.8 s, one long utterance
EN = "en/whisper/jfk.flac"
CHUNK = 4800  # 100 ms of 24 kHz 16-bit samples


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("realtime"), model_cache)
    s.start()
    yield s
    s.kill()


def pcm24k(eval_root: Path, path: str, silence_s: float = 1.5) -> bytes:
    audio = resample(load(eval_root / path), 24000)
    audio = np.concatenate([audio, np.zeros(int(silence_s * 24000), np.float32)])
    return bytes((audio.clip(-1, 1) * 32767).astype("<i2").tobytes())


def reference(path: str) -> str:
    return next(r["text"] for r in eval_rows("asr.jsonl") if r["path"] == path)


async def session(url: str, audio: bytes, transcription: dict[str, Any], detection: Any,
                  speed: float, commit: bool = False) -> list[Any]:  # fmt: skip
    client = openai_sdk.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    events: list[Any] = []
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        events.append(await conn.recv())
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": transcription,
                        "turn_detection": detection,
                    }
                },
            }
        )

        async def send() -> None:
            began = time.monotonic()
            for i in range(0, len(audio), CHUNK):
                if speed:
                    await asyncio.sleep(
                        max(0.0, began + (i + CHUNK) / 48000 / speed - time.monotonic())
                    )
                piece = base64.b64encode(audio[i : i + CHUNK]).decode()
                await conn.input_audio_buffer.append(audio=piece)
            if commit:
                await conn.input_audio_buffer.commit()

        heard = asyncio.Event()

        async def receive() -> None:
            async for event in conn:
                events.append(event)
                heard.set()

        def finished() -> bool:
            kinds = [e.type for e in events]
            done = kinds.count("conversation.item.input_audio_transcription.completed")
            opened = kinds.count("input_audio_buffer.speech_started")
            return "error" in kinds or (done > 0 and done >= opened)

        sender = asyncio.create_task(send())
        receiver = asyncio.create_task(receive())
        async with asyncio.timeout(120):
            # All the audio sent first: the last transcript may come before the
            # trailing silence is all sent, and nothing more comes after it.
            await sender
            while True:
                heard.clear()
                if finished() or receiver.done():
                    break
                await heard.wait()
        receiver.cancel()
    return events


def wait_saved(server: Server, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (r := httpx.get(f"{server.url}/api/tasks/{task_id}")).status_code == 404:
        assert time.monotonic() < deadline, "the realtime session was not saved"
        time.sleep(0.2)
    return dict(r.json())


def mostly_in(deltas: str, transcript: str, language: str) -> bool:
    """Whether at least 80% of the deltas' letters recur, in order, in the transcript.
    Letters, not words: a partial decode may split a word the final joins ("на берите"
    against "наберите"), which is the same speech heard."""
    said = "".join(normalize(deltas, language))
    heard = "".join(normalize(transcript, language))
    matched = sum(
        b.size for b in SequenceMatcher(None, said, heard, autojunk=False).get_matching_blocks()
    )
    return matched >= 0.8 * len(said)


def test_sdk_realtime_transcription_with_server_vad(server: Server, eval_root: Path) -> None:
    audio = pcm24k(eval_root, RU)
    events = asyncio.run(
        session(
            server.url,
            audio,
            {"model": "whisper-1", "language": "ru"},
            {"type": "server_vad"},
            speed=1.0,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"], kinds
    created = events[0].session
    assert (
        created.type == "transcription"
        and events[1].session.audio.input.transcription.language == "ru"
    )
    items: dict[str, list[Any]] = {}
    for e in events[2:]:
        assert e.type != "error", e
        items.setdefault(e.item_id, []).append(e)
    assert items
    transcripts = []
    for _item, seq in items.items():
        order = [e.type for e in seq]
        assert order[0] == "input_audio_buffer.speech_started", order
        stop = order.index("input_audio_buffer.speech_stopped")
        committed = order.index("input_audio_buffer.committed")
        completed = order.index("conversation.item.input_audio_transcription.completed")
        assert stop < committed < completed == len(order) - 1, order
        assert seq[0].audio_start_ms < seq[stop].audio_end_ms
        final = seq[completed]
        assert final.usage.type == "duration" and final.usage.seconds > 0
        # The item's own audio (its speech, with padding), not the session's so far.
        assert final.usage.seconds <= (seq[stop].audio_end_ms - seq[0].audio_start_ms) / 1000
        deltas = "".join(e.delta for e in seq if e.type.endswith(".delta"))
        assert mostly_in(deltas, final.transcript, "ru"), (deltas, final.transcript)
        transcripts.append(final.transcript)
    assert any(e.type.endswith(".delta") for e in events)
    text = " ".join(transcripts)
    assert corpus_wer([(reference(RU), text)], "ru") < 0.35, text
    task = wait_saved(server, created.id)
    assert task["status"] == "completed" and task["options"]["live"]["protocol"] == "realtime"
    assert task["options"]["live"]["sample_rate"] == 24000
    assert abs(task["duration"] - len(audio) / 48000) < 0.1
    assert server.result(created.id)["text"] == text


def test_sdk_realtime_without_turn_detection_commits_by_hand(
    server: Server, eval_root: Path
) -> None:
    audio = pcm24k(eval_root, EN, silence_s=0.0)
    events = asyncio.run(
        session(
            server.url, audio, {"model": "whisper-1", "language": "en"}, None, speed=0, commit=True
        )
    )
    kinds = [e.type for e in events]
    assert "input_audio_buffer.speech_started" not in kinds and "error" not in kinds, kinds
    # The commit ends the item: committed, the text not yet sent as a delta, completed
    # (as OpenAI's server does: the deltas, joined, are the transcript unless it changed).
    assert kinds[-1] == "conversation.item.input_audio_transcription.completed", kinds
    assert kinds.count("input_audio_buffer.committed") == 1, kinds
    after = kinds[kinds.index("input_audio_buffer.committed") + 1 : -1]
    assert set(after) <= {"conversation.item.input_audio_transcription.delta"}, kinds
    transcript = events[-1].transcript
    said = "".join(e.delta for e in events if e.type.endswith(".delta"))
    assert said.strip() and mostly_in(said, transcript, "en"), (said, transcript)
    assert corpus_wer([(reference(EN), transcript)], "en") < 0.25, transcript
    assert all(e.item_id == events[-1].item_id for e in events[2:])


def test_refusals_follow_openais_shape(server: Server) -> None:
    async def refused(query: dict[str, str], update: dict[str, Any] | None) -> list[Any]:
        client = openai_sdk.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        out: list[Any] = []
        async with client.realtime.connect(extra_query=query) as conn:
            out.append(await conn.recv())
            if update is not None:
                await conn.session.update(session=update)  # type: ignore[arg-type]
                out.append(await conn.recv())
                await conn.send({"type": "response.create"})  # type: ignore[arg-type]
                out.append(await conn.recv())
        return out

    events = asyncio.run(refused({"intent": "conversation"}, None))
    assert (
        events[0].type == "error"
        and "intent 'conversation' is not served" in events[0].error.message
    )
    events = asyncio.run(refused({"intent": "transcription"}, {"type": "realtime"}))
    assert events[1].type == "error" and "transcription sessions only" in events[1].error.message
    assert events[2].type == "error" and "transcribes only" in events[2].error.message


async def manual_english(conn: Any) -> list[Any]:
    """A new session set to English with manual commits: its first two events."""
    created = await conn.recv()
    await conn.session.update(session={"type": "transcription", "audio": {"input": {
        "transcription": {"language": "en"}, "turn_detection": None}}})  # fmt: skip
    return [created, await conn.recv()]


def test_a_mistyped_session_update_is_refused_and_the_audio_kept(
    server: Server, eval_root: Path
) -> None:
    audio = pcm24k(eval_root, EN, silence_s=0.0)
    bad = {"type": "session.update",
           "session": {"type": "transcription", "audio": {"input": {"transcription": {
               "language": 5}}}}}  # fmt: skip

    async def run() -> list[Any]:
        client = openai_sdk.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        out: list[Any] = []
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            out += await manual_english(conn)
            for i in range(0, len(audio), CHUNK):
                piece = base64.b64encode(audio[i : i + CHUNK]).decode()
                await conn.input_audio_buffer.append(audio=piece)
            await conn.input_audio_buffer.commit()
            await conn.send(bad)  # type: ignore[arg-type]
            async with asyncio.timeout(120):
                async for event in conn:
                    out.append(event)
                    if event.type == "conversation.item.input_audio_transcription.completed":
                        break
        return out

    events = asyncio.run(run())
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1, [e.type for e in events]
    assert errors[0].error.type == "invalid_request_error"
    assert "transcription.language must be a string" in errors[0].error.message
    assert events[-1].type == "conversation.item.input_audio_transcription.completed"
    # The session went on after the refusal, and its recording was saved when it closed.
    task = wait_saved(server, events[0].session.id)
    assert task["status"] == "completed"
    assert "country" in server.result(events[0].session.id)["text"].lower()


def test_manual_commits_count_each_items_audio_and_an_empty_commit_is_refused(
    server: Server, eval_root: Path
) -> None:
    """`usage.seconds` is each item's own audio (OpenAI's per-item usage), not the
    session's so far; a commit of nothing, or of less than 100 ms, is OpenAI's
    `input_audio_buffer_commit_empty` error, commits nothing, and the session goes on."""
    audio = pcm24k(eval_root, EN, silence_s=0.0)
    second = 48000  # bytes of 24 kHz 16-bit audio
    first, then, rest = audio[: 3 * second], audio[3 * second : 4 * second], audio[4 * second :]
    completed = "conversation.item.input_audio_transcription.completed"

    async def run() -> list[Any]:
        client = openai_sdk.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        out: list[Any] = []
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            out += await manual_english(conn)

            async def append(pcm: bytes) -> None:
                for i in range(0, len(pcm), CHUNK):
                    piece = base64.b64encode(pcm[i : i + CHUNK]).decode()
                    await conn.input_audio_buffer.append(audio=piece)

            async def commit(event_id: str) -> str:
                """The commit's outcome: `error`, or `completed` once its item is done."""
                await conn.input_audio_buffer.commit(event_id=event_id)
                async with asyncio.timeout(120):
                    async for event in conn:
                        out.append(event)
                        if event.type in ("error", completed):
                            return str(event.type)
                raise AssertionError("the connection closed")

            assert await commit("evt_nothing") == "error"  # nothing appended yet
            await append(first)
            assert await commit("evt_first") == completed
            await append(then)
            assert await commit("evt_then") == completed
            assert await commit("evt_again") == "error"  # all of it was committed
            await append(b"\x00\x00")  # one sample: 0.04 ms
            assert await commit("evt_byte") == "error"
            await append(rest)
            assert await commit("evt_rest") == completed
        return out

    events = asyncio.run(run())
    errors = [e for e in events if e.type == "error"]
    assert [e.error.event_id for e in errors] == ["evt_nothing", "evt_again", "evt_byte"]
    for e in errors:
        assert (e.error.type, e.error.code) == ("invalid_request_error",
                                                "input_audio_buffer_commit_empty")  # fmt: skip
        assert "buffer too small" in e.error.message
    assert "0.04ms" in errors[2].error.message
    kinds = [e.type for e in events]
    assert kinds.count("input_audio_buffer.committed") == 3, kinds  # the refused commit nothing
    items = [e for e in events if e.type == completed]
    assert [e.usage.type for e in items] == ["duration"] * 3
    expected = [3.0, 1.0, (len(rest) + 2) / second]  # the sample waited in the buffer
    assert [e.usage.seconds for e in items] == pytest.approx(expected, abs=0.002), items
    assert len({e.item_id for e in items}) == 3
    assert "country" in items[-1].transcript.lower(), items[-1].transcript
