"""The CLI as a user runs it: a real subprocess, real files, real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from tests.conftest import eval_rows
from tests.media_factory import write_silence, write_silent_video
from tests.servers.receiver import Receiver
from transcriber.formats.json_schema import JSON_SCHEMA

pytestmark = pytest.mark.slow


def cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {}), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "transcriber", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def env(model_cache: Path) -> dict[str, str]:
    return {"TRANSCRIBER_MODEL_DIR": str(model_cache)}


def test_transcribe_all_formats(eval_root: Path, tmp_path: Path, env: dict[str, str]) -> None:
    video = eval_root / eval_rows("video.jsonl")[0]["path"]
    ru = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru" and r["sample_rate"] == 8000)
    out = tmp_path / "out"
    r = cli(
        "transcribe", str(video), str(eval_root / ru["path"]),
        "--language", "auto", "--format", "srt,vtt,txt,json,tsv,docx",
        "--output-dir", str(out), "--word-timestamps",
        env_extra=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    stem = video.stem
    cues = list(srt.parse((out / f"{stem}.srt").read_text()))
    assert cues and all(c.start < c.end for c in cues)
    assert all(len(line) <= 42 for c in cues for line in c.content.splitlines())
    assert "example" in " ".join(c.content for c in cues).lower()
    captions = webvtt.from_string((out / f"{stem}.vtt").read_text())
    assert len(captions) >= len(cues) - 2
    doc = json.loads((out / f"{stem}.json").read_text())
    assert set(JSON_SCHEMA["required"]) <= set(doc)
    assert doc["language"] == "en" and doc["metadata"]["total_segments"] == len(doc["segments"])
    assert all(s["words"] for s in doc["segments"])
    assert (out / f"{stem}.docx").stat().st_size > 0
    tsv = (out / f"{stem}.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and len(tsv) > 1
    ru_doc = json.loads((out / f"{Path(ru['path']).stem}.json").read_text())
    assert ru_doc["language"] == "ru"
    assert "%" in r.stderr or "done" in r.stderr
    assert doc["metadata"]["warnings"] == ru_doc["metadata"]["warnings"] == []
    assert "warning:" not in r.stderr


def test_bad_inputs_fail_alone(eval_root: Path, tmp_path: Path, env: dict[str, str]) -> None:
    good = eval_root / "en/whisper/jfk.flac"
    pdf = tmp_path / "paper.mp4"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    mute = write_silent_video(tmp_path / "mute.mp4")
    whole = (eval_root / "ru/coqui_stt/ru.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    missing = tmp_path / "nope.mp3"
    quiet = write_silence(tmp_path / "quiet.flac", 5.0)
    out = tmp_path / "out"
    r = cli(
        "transcribe", str(missing), str(pdf), str(empty), str(mute), str(cut), str(good),
        str(quiet),
        "--language", "en", "--format", "txt", "--output-dir", str(out),
        env_extra=env,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    expected = {
        missing: "not found",
        pdf: "not a media file",
        empty: "empty",
        mute: "no audio stream",
        cut: "truncated",
    }
    for path, words in expected.items():
        line = next((e for e in errors if str(path) in e), None)
        assert line is not None, f"no error line for {path}: {r.stderr}"
        assert words in line
    assert "fellow americans" in (out / "jfk.txt").read_text().lower()
    # A file with nothing to say is transcribed (empty), with a warning that says why.
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {quiet}: no speech was found in the 4.6 s of audio"]
    assert sorted(p.name for p in out.iterdir()) == ["jfk.txt", "quiet.txt"]


def test_bad_format_and_help(env: dict[str, str]) -> None:
    r = cli("transcribe", "x.wav", "--format", "srt,pdf", env_extra=env)
    assert r.returncode == 2 and "pdf" in r.stderr
    r = cli("transcribe", "x.wav", "--language", "klingon", env_extra=env)
    assert r.returncode == 2 and "language 'klingon' is not one Whisper knows" in r.stderr
    help_text = cli("transcribe", "--help").stdout
    for flag in ["--language", "--format", "--output-dir", "--model", "--beam-size",
                 "--word-timestamps", "--vad", "--no-vad", "--channels", "--prompt"]:  # fmt: skip
        assert flag in help_text
    # At 80 columns every format is named, and [h:] is not taken for markup.
    narrow = subprocess.run([sys.executable, "-m", "transcriber", "transcribe", "--help"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "80"}).stdout  # fmt: skip
    assert "rttm" in narrow and "docx" in narrow and narrow.count("[h:]mm:ss") == 2, narrow


def test_impossible_speaker_bounds_fail_before_any_work(
    eval_root: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    jfk = eval_root / next(r for r in eval_rows("asr.jsonl") if r["lang"] == "en")["path"]
    out = tmp_path / "out"
    r = cli("transcribe", str(jfk), "--min-speakers", "3", "--max-speakers", "2",
            "--output-dir", str(out), env_extra=env)  # fmt: skip
    assert r.returncode == 2
    assert "min_speakers (3) is above max_speakers (2)" in r.stderr
    assert not out.exists()


def test_models_list_and_doctor(tmp_path: Path) -> None:
    env = {"TRANSCRIBER_MODEL_DIR": str(tmp_path / "m")}
    before = cli("models", "list", env_extra=env)
    assert before.returncode == 0
    assert "assembled on first use" in before.stdout and "tiny.en" in before.stdout
    for name in ("segmentation-3.0", "campplus-cn-en"):
        assert any(name in row and "ready" in row for row in before.stdout.splitlines())
    doc = cli("doctor", env_extra=env)
    assert doc.returncode == 0, doc.stderr
    for name in ["python", "package faster-whisper", "model", "decoding", "disk"]:
        assert name in doc.stderr
    for name in ("segmentation-3.0", "campplus-cn-en"):
        assert f"ok   speaker model {name}:" in doc.stderr
    # One line per check (the cli() helper's 120 columns): none wraps onto the next.
    assert all(line.startswith(("ok ", "FAIL ")) for line in doc.stderr.splitlines()), doc.stderr
    after = cli("models", "list", env_extra=env)
    assert str(tmp_path / "m" / "base") in after.stdout and "ready" in after.stdout


def test_unknown_model_names_offline_options(tmp_path: Path, eval_root: Path) -> None:
    env = {
        "TRANSCRIBER_MODEL_DIR": str(tmp_path / "m"),
        "HF_HUB_OFFLINE": "1",
    }
    r = cli("transcribe", str(eval_root / "en/whisper/jfk.flac"), "--model", "large-v9",
            "--output-dir", str(tmp_path), env_extra=env)  # fmt: skip
    assert r.returncode == 2
    assert "work offline: base" in r.stderr and "tiny.en" in r.stderr


def test_urls_are_downloaded_and_fail_alone(
    eval_root: Path, tmp_path: Path, env: dict[str, str], receiver: Receiver
) -> None:
    receiver.files["talks/jfk.flac"] = eval_root / "en/whisper/jfk.flac"
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    receiver.files["notes.mp3"] = notes
    out = tmp_path / "out"
    r = cli(
        "transcribe", f"{receiver.url}/talks/jfk.flac?sig=secret", f"{receiver.url}/gone.mp3",
        f"{receiver.url}/notes.mp3?sig=secret", "--language", "en", "--format", "txt,srt",
        "--output-dir", str(out),
        env_extra=env,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert any(f"{receiver.url}/gone.mp3 answered HTTP 404" in e for e in errors), r.stderr
    assert any(f"{receiver.url}/notes.mp3: cannot be read" in e for e in errors), r.stderr
    assert "secret" not in r.stderr + r.stdout  # a presigned URL's signature stays private
    assert not any("transcriber-url-" in e for e in errors)  # nor the temporary file
    assert "fellow americans" in (out / "jfk.txt").read_text().lower()
    assert sorted(p.name for p in out.iterdir()) == ["jfk.srt", "jfk.txt"]


def test_stdin_in_and_stdout_out(eval_root: Path, env: dict[str, str]) -> None:
    """`… | transcriber transcribe - -o -`: a pipe in, the transcript alone on stdout."""
    jfk = (eval_root / "en/whisper/jfk.flac").read_bytes()
    r = subprocess.run(
        [sys.executable, "-m", "transcriber", "transcribe", "-", "--output-dir", "-"],
        input=jfk,
        capture_output=True,
        env={**os.environ, **env, "COLUMNS": "120"},
        timeout=600,
    )
    stderr = r.stderr.decode()
    assert r.returncode == 0, stderr
    # txt is the one format when writing to stdout; progress and "done" go to stderr.
    assert r.stdout.decode().lower().startswith("and so my fellow americans"), r.stdout
    assert "done stdin → stdout" in stderr


def test_folders_expand_to_their_media_and_equal_stems_do_not_overwrite(
    eval_root: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    talks = tmp_path / "talks"
    (talks / "later").mkdir(parents=True)
    jfk = (eval_root / "en/whisper/jfk.flac").read_bytes()
    (talks / "talk.flac").write_bytes(jfk)
    (talks / "later" / "talk.flac").write_bytes(jfk)  # not read through the folder
    (talks / "talk.txt").write_text("an output of an earlier run, not an input")
    (talks / ".talk.wav").write_bytes(jfk)  # hidden: left alone
    r = cli(
        "transcribe", str(talks), str(talks / "later" / "talk.flac"),
        "--language", "en", "--format", "srt", "--output-dir", str(talks),
        env_extra=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in talks.iterdir() if p.suffix == ".srt")
    assert made == ["talk-2.srt", "talk.srt"]
    for name in made:
        assert "fellow americans" in (talks / name).read_text().lower()
    assert (talks / "talk.txt").read_text().startswith("an output of an earlier run")
    assert f"→ {talks}/talk-2.{{srt}}" in r.stderr


def test_cli_input_mistakes_are_named(tmp_path: Path, env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no media here")
    r = cli("transcribe", str(empty), "--output-dir", str(tmp_path / "out"), env_extra=env)
    assert r.returncode == 2
    assert f"error: {empty}: no audio or video file directly in this folder" in r.stderr
    assert list((tmp_path / "out").iterdir()) == []
    r = cli("transcribe", "x.wav", "--output-dir", "-", "--format", "txt,srt", env_extra=env)
    assert r.returncode == 2 and "writes one format to stdout" in r.stderr
    r = cli("transcribe", "-", "-", "--output-dir", str(tmp_path), env_extra=env)
    assert r.returncode == 2 and "stdin (-) can be named only once" in r.stderr
    # RTTM is who spoke when: without speakers it would be an empty file.
    r = cli("transcribe", "x.wav", "--format", "txt,rttm", "-o", str(tmp_path), env_extra=env)
    assert r.returncode == 2 and "--format rttm lists who spoke when: add --diarize" in r.stderr
    # A terminal on stdin means nothing was piped: said at once, not waited on.
    controller, terminal = os.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "transcriber", "transcribe", "-", "-o", "-"],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, **env, "COLUMNS": "120"},
            timeout=120,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert r.returncode == 2 and "nothing is piped in" in r.stderr
    assert r.stdout == ""


def test_rttm_lines_name_their_recording(
    eval_root: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    jfk = eval_root / "en/whisper/jfk.flac"
    r = cli("transcribe", str(jfk), "--diarize", "--format", "rttm", "-o", str(tmp_path),
            env_extra=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "jfk.rttm").read_text().splitlines()
    assert lines and all(line.split()[:3] == ["SPEAKER", "jfk", "1"] for line in lines)


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    """A setting out of range gave a page of traceback (and a port past 65535 one from
    deep in uvicorn)."""
    cases = [
        ({"TRANSCRIBER_BATCH_SIZE": "0"}, ["transcribe", "x.wav"], "TRANSCRIBER_BATCH_SIZE='0'"),
        ({"PORT": "http"}, ["serve"], "PORT='http': Input should be a valid integer"),
        ({"TRANSCRIBER_PORT": "70000"}, ["serve"], "TRANSCRIBER_PORT='70000'"),
        ({"TRANSCRIBER_DECODING": "fast"}, ["doctor"], "TRANSCRIBER_DECODING='fast'"),
        ({}, ["serve", "--port", "0"], "--port=0: Input should be greater than or equal to 1"),
        # A URL of a kind the service has no backend for was a traceback from deep in
        # SQLAlchemy (a driver it does not have) or a failed start of the app.
        (
            {"TRANSCRIBER_DATABASE_URL": "mysql://u:p@db/jobs"},
            ["serve"],
            "TRANSCRIBER_DATABASE_URL='mysql://u:p@db/jobs': Value error, the job store is SQLite",
        ),
        ({"TRANSCRIBER_DATABASE_URL": "jobs.db"}, ["worker"], "TRANSCRIBER_DATABASE_URL='jobs.db'"),
        (
            {"TRANSCRIBER_STORAGE_URL": "ftp://files/x"},
            ["serve"],
            "TRANSCRIBER_STORAGE_URL='ftp://files/x': Value error, use file:///",
        ),
        ({"TRANSCRIBER_QUEUE_URL": "amqp://mq"}, ["serve"], "TRANSCRIBER_QUEUE_URL='amqp://mq'"),
    ]
    for variables, args, said in cases:
        r = cli(*args, env_extra={"TRANSCRIBER_DATA_DIR": str(tmp_path), **variables})
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith(f"error: {said}"), r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_outputs_that_cannot_be_written_fail_alone(tmp_path: Path, env: dict[str, str]) -> None:
    # They used to end the whole run with a traceback, the files after them untouched.
    first, second = (
        write_silence(tmp_path / "one.flac", 2.0),
        write_silence(tmp_path / "two.flac", 2.0),
    )
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should be")
    r = cli("transcribe", str(first), "-o", str(taken), "-f", "txt", env_extra=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"error: {taken}: cannot create the output folder" in r.stderr
    out = tmp_path / "out"
    (out / "one.txt").mkdir(parents=True)  # a folder where one.txt should go
    r = cli("transcribe", str(first), str(second), "-o", str(out), "-f", "txt", env_extra=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"error: {first}: cannot write {out / 'one.txt'}" in r.stderr
    assert (out / "two.txt").is_file() and f"done {second}" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["one.txt", "two.txt"]  # no .part left


def test_live_names_an_address_that_is_not_the_service(
    tmp_path: Path, env: dict[str, str], receiver: Receiver
) -> None:
    # A bad --url, or one where a plain web server (not this service) answers: one error
    # line each, no traceback (websockets' InvalidURI and InvalidMessage went through).
    audio = write_silence(tmp_path / "a.wav", 1.0)
    for url in ("localhost:8086", "ftp://example.com", "foo"):
        r = cli("live", str(audio), "--url", url, env_extra=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert f"error: --url {url!r}: give the service's address" in r.stderr
    r = cli("live", str(audio), "--url", receiver.url, env_extra=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"error: cannot reach the service at {receiver.url}" in r.stderr


def test_a_url_over_the_upload_limit_names_the_setting(
    eval_root: Path, tmp_path: Path, env: dict[str, str], receiver: Receiver
) -> None:
    receiver.files["jfk.flac"] = eval_root / "en/whisper/jfk.flac"  # 1.1 MB
    r = cli("transcribe", f"{receiver.url}/jfk.flac", "-o", str(tmp_path / "out"),
            env_extra=env | {"TRANSCRIBER_MAX_UPLOAD_MB": "0.5"})  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "larger than the limit of 0.5 MB (TRANSCRIBER_MAX_UPLOAD_MB)" in r.stderr, r.stderr
