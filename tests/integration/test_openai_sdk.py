"""OpenAI's own Python SDK against a live `transcriber serve`: streaming and diarized_json."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai as openai_sdk
import pytest

from tests.conftest import eval_rows
from tests.integration.live_api import Server
from tests.integration.test_api import JFK
from tests.integration.test_serve import long_call
from tests.media_factory import write_hollow_wav
from transcriber.evaluation.wer import corpus_wer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path, model_cache)  # batches of 2 windows: a checkpoint every minute
    s.start()
    yield s
    s.kill()


@pytest.fixture
def client(server: Server) -> openai_sdk.OpenAI:
    return openai_sdk.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_stream_delivers_text_as_it_is_transcribed(
    client: openai_sdk.OpenAI, eval_root: Path, tmp_path: Path
) -> None:
    path = long_call(eval_root, tmp_path)  # 30 Russian clips: several batches of windows
    with path.open("rb") as f:
        events = list(client.audio.transcriptions.create(
            model="whisper-1", file=f, language="ru", stream=True))  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.done") == 1
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 2, kinds  # text came while the rest was still being transcribed
    done = events[-1].text
    assert "".join(deltas) == done
    picked = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:30]
    reference = " ".join(r["text"] for r in picked)
    assert corpus_wer([(reference, done)], "ru") < 0.3


def test_diarized_json_plain_and_streamed(client: openai_sdk.OpenAI, eval_root: Path) -> None:
    with (eval_root / JFK).open("rb") as f:
        plain = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=f, response_format="diarized_json",
            chunking_strategy="auto")  # fmt: skip
    assert "ask not what your country" in plain.text.lower()
    assert plain.segments and {s.speaker for s in plain.segments} == {"A"}
    assert all(s.start < s.end for s in plain.segments) and 10.5 < plain.duration < 11.5
    assert " ".join(s.text for s in plain.segments) == plain.text

    with (eval_root / JFK).open("rb") as f:
        events = list(client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="diarized_json", stream=True))  # fmt: skip
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert [s.text for s in segments] == [s.text for s in plain.segments]
    assert events[-1].type == "transcript.text.done" and events[-1].text == plain.text


def test_logprobs_plain_and_streamed(client: openai_sdk.OpenAI, eval_root: Path) -> None:
    """`include=["logprobs"]`, as gpt-4o-transcribe callers ask for a confidence per word;
    it was taken and left out of the answer."""
    with (eval_root / JFK).open("rb") as f:
        plain = client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=f, response_format="json", include=["logprobs"]
        )
    assert plain.logprobs and "".join(p.token for p in plain.logprobs).strip() == plain.text
    assert all(-25.0 < p.logprob <= 0.0 for p in plain.logprobs)
    assert sum(p.logprob > -0.7 for p in plain.logprobs) > 0.8 * len(plain.logprobs)  # clear
    assert all(bytes(int(b) for b in p.bytes or []).decode() == p.token for p in plain.logprobs)
    with (eval_root / JFK).open("rb") as f:
        events = list(client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=f, include=["logprobs"], stream=True))  # fmt: skip
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == plain.text
    assert [p.token for p in done.logprobs or []] == [p.token for p in plain.logprobs]
    with (
        (eval_root / JFK).open("rb") as f,
        pytest.raises(openai_sdk.UnprocessableEntityError, match="logprobs works with"),
    ):
        client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", include=["logprobs"]
        )


def test_stream_refusals_and_a_late_failure(
    client: openai_sdk.OpenAI, server: Server, eval_root: Path, tmp_path: Path
) -> None:
    with (
        (eval_root / JFK).open("rb") as f,
        pytest.raises(openai_sdk.UnprocessableEntityError, match="stream=true works with") as no,
    ):
        client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt",
                                           stream=True)  # fmt: skip
    # The SDK reads OpenAI's error fields: which kind, which parameter, which code.
    assert (no.value.type, no.value.param, no.value.code) == (
        "invalid_request_error", "stream", "invalid_option")  # fmt: skip
    # Accepted, then found to hold no sound: the reason arrives as an error event.
    hollow = write_hollow_wav(tmp_path / "hollow.wav")
    with (
        hollow.open("rb") as f,
        pytest.raises(openai_sdk.APIError, match="holds no sound") as late,
    ):
        list(client.audio.transcriptions.create(model="whisper-1", file=f, stream=True))
    assert (late.value.type, late.value.param, late.value.code) == (
        "invalid_request_error", None, "empty_file")  # fmt: skip
    listed = httpx.get(f"{server.url}/api/tasks").json()["items"]
    assert [t["status"] for t in listed] == ["failed"]


def test_a_client_that_leaves_the_stream_cancels_its_task(
    server: Server, eval_root: Path, tmp_path: Path
) -> None:
    path = long_call(eval_root, tmp_path)
    with (
        path.open("rb") as f,
        httpx.stream(
            "POST",
            f"{server.url}/v1/audio/transcriptions",
            timeout=120,
            files={"file": (path.name, f)},
            data={"stream": "true", "language": "ru"},
        ) as r,  # fmt: skip
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        first = next(line for line in r.iter_lines() if line.startswith("data: "))
        assert '"transcript.text.delta"' in first
    deadline = time.monotonic() + 30
    while (task := httpx.get(f"{server.url}/api/tasks").json()["items"][0])["status"] != (
        "cancelled"
    ):
        assert time.monotonic() < deadline and task["status"] == "processing", task
        time.sleep(0.2)


def test_translations_through_the_sdk(client: openai_sdk.OpenAI, eval_root: Path) -> None:
    row = next(r for r in eval_rows("asr.jsonl") if "конференц" in r["text"])
    # The SDK marks its translations call deprecated; clients still make it.
    with (eval_root / row["path"]).open("rb") as f, pytest.warns(DeprecationWarning):
        got = client.audio.translations.create(model="whisper-1", file=f)
    assert got.text.strip() and not re.search("[а-яё]", got.text, re.IGNORECASE), got.text
    with (eval_root / row["path"]).open("rb") as f, pytest.warns(DeprecationWarning):
        verbose = client.audio.translations.create(
            model="whisper-1", file=f, response_format="verbose_json")  # fmt: skip
    assert verbose.language == "english" and verbose.text == got.text
    # The model calls an SDK client makes before it transcribes.
    assert {"whisper-1", "base"} <= {m.id for m in client.models.list()}
    assert client.models.retrieve("whisper-1").id == "whisper-1"
    # Fields OpenAI's translations do not take, and words without verbose_json: refused,
    # naming the field, rather than dropped.
    with (
        (eval_root / row["path"]).open("rb") as f,
        pytest.raises(openai_sdk.UnprocessableEntityError, match="not a field") as stream,
        pytest.warns(DeprecationWarning),
    ):
        client.audio.translations.create(model="whisper-1", file=f, extra_body={"stream": True})
    assert (stream.value.type, stream.value.param) == ("invalid_request_error", "stream")
    with (
        (eval_root / row["path"]).open("rb") as f,
        pytest.raises(openai_sdk.UnprocessableEntityError, match="verbose_json") as words,
    ):
        client.audio.transcriptions.create(model="whisper-1", file=f, response_format="json",
                                           timestamp_granularities=["word"])  # fmt: skip
    assert words.value.param == "timestamp_granularities"
    with pytest.raises(openai_sdk.NotFoundError, match="not served here") as unknown:
        client.models.retrieve("gpt-9")
    assert (unknown.value.type, unknown.value.param) == ("invalid_request_error", "model")
