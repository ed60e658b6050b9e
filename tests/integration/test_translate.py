"""Whisper's translate task: English text of speech in another language, from the
pipeline, the CLI, `POST /api/tasks`, whisper-asr-webservice's `/asr?task=translate`
and OpenAI's `/v1/audio/translations`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import eval_rows
from tests.integration.test_api import JFK, assert_error, upload, wait
from tests.integration.test_cli import cli
from tests.integration.test_compat import asr
from tests.media_factory import load, write_audio
from tests.unit.test_formats import validate
from transcriber.domain import TranscriptionOptions
from transcriber.formats.json_doc import to_dict
from transcriber.formats.json_schema import JSON_SCHEMA
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


@pytest.fixture(scope="module")
def conference(eval_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Russian prompts of a conference bridge (33 s), joined with short pauses."""
    rows = [r for r in eval_rows("asr.jsonl") if "конференц" in r["text"]]
    assert len(rows) >= 3, "the eval set lacks the conference prompts"
    pause = np.zeros(8000, np.float32)
    audio = np.concatenate([x for r in rows for x in (load(eval_root / r["path"]), pause)])
    return write_audio(tmp_path_factory.mktemp("tr") / "conference.flac", audio, codec="flac")


def english(text: str) -> bool:
    return bool(text.strip()) and not CYRILLIC.search(text) and "conference" in text.lower()


def test_the_pipeline_translates_and_keeps_the_spoken_language(
    pipeline: Pipeline, conference: Path, eval_root: Path
) -> None:
    said = pipeline.run(conference, TranscriptionOptions(language="ru"))
    assert CYRILLIC.search(said.text) and said.task == "transcribe"
    t = pipeline.run(conference, TranscriptionOptions(translate=True))  # language detected
    assert english(t.text), t.text
    assert t.language == "ru" and t.task == "translate"
    assert all(a.end <= b.start + 0.01 for a, b in zip(t.segments, t.segments[1:], strict=False))
    assert all(0 <= s.start < s.end <= t.duration + 0.01 for s in t.segments)
    doc = to_dict(t)
    validate(doc, JSON_SCHEMA)
    assert doc["metadata"]["task"] == "translate"
    # English speech is simply transcribed.
    en = pipeline.run(eval_root / JFK, TranscriptionOptions(translate=True))
    assert "ask not what your country can do for you" in en.text.lower()


def test_cli_task_translate(conference: Path, tmp_path: Path, model_cache: Path) -> None:
    env = {"TRANSCRIBER_MODEL_DIR": str(model_cache)}
    r = cli("transcribe", str(conference), "--task", "translate", "-f", "txt,json",
            "-o", str(tmp_path), env_extra=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert english((tmp_path / "conference.txt").read_text())
    assert json.loads((tmp_path / "conference.json").read_text())["metadata"]["task"] == "translate"
    r = cli("transcribe", str(conference), "--task", "summarize", "-o", str(tmp_path),
            env_extra=env)  # fmt: skip
    assert r.returncode == 2 and "task 'summarize': use transcribe, or translate" in r.stderr


def test_api_translations(client: TestClient, conference: Path) -> None:
    r = upload(client, conference, task="translate", formats="srt")
    assert r.status_code == 202 and r.json()["options"]["translate"] is True, r.text
    assert wait(client, r.json()["id"])["status"] == "completed"
    srt_text = client.get(f"/api/tasks/{r.json()['id']}/result", params={"format": "srt"}).text
    assert english(srt_text), srt_text
    assert_error(upload(client, conference, task="summarize"), 422, "invalid_option")

    body = json.loads(asr(client, conference, task="translate", output="json").content)
    assert english(body["text"]) and body["language"] == "ru"

    with conference.open("rb") as f:
        files = {"file": (conference.name, f.read())}
    # Transcription-only fields that ask for nothing (false, empty) are accepted.
    nothing = {"model": "whisper-1", "stream": "false", "language": "", "include[]": ""}
    got = client.post("/v1/audio/translations", files=files, data=nothing)
    assert got.status_code == 200 and english(got.json()["text"]), got.text
    verbose = client.post("/v1/audio/translations", files=files,
                          data={"response_format": "verbose_json"}).json()  # fmt: skip
    assert (verbose["task"], verbose["language"]) == ("translate", "english")
    assert english(verbose["text"]) and verbose["segments"]
    bad = client.post("/v1/audio/translations", files=files,
                      data={"response_format": "diarized_json"})  # fmt: skip
    assert_error(bad, 422, "invalid_option")
