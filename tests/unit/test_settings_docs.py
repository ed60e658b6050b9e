"""Every setting is documented, and environment variables reach it."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    for name, field in Settings.model_fields.items():
        assert f"TRANSCRIBER_{name.upper()}" in text, f"{name} is missing from {DOC}"
        assert field.description, f"{name} has no docstring"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSCRIBER_MODEL", "tiny.en")
    monkeypatch.setenv("TRANSCRIBER_BATCH_SIZE", "3")
    monkeypatch.setenv("TRANSCRIBER_MODEL_DIR", str(tmp_path))
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.model, s.batch_size, s.model_dir) == ("tiny.en", 3, tmp_path)


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBER_DEVICE", "tpu")
    with pytest.raises(ValueError, match="device"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_every_transcribe_flag_is_in_the_readme() -> None:
    import typer.main

    from transcriber.cli import app

    readme = (DOC.parents[1] / "README.md").read_text()
    command = typer.main.get_command(app)
    transcribe = command.commands["transcribe"]  # type: ignore[attr-defined]
    for param in transcribe.params:
        for flag in param.opts:
            if flag.startswith("--"):
                assert flag in readme, f"README does not document {flag}"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TRANSCRIBER_CPU_THREADS": "2"}, (2, 1)),  # two one-thread copies
        ({"TRANSCRIBER_CPU_THREADS": "8"}, (2, 4)),
        ({"TRANSCRIBER_CPU_THREADS": "1"}, (1, 1)),
        ({"TRANSCRIBER_CPU_THREADS": "8", "TRANSCRIBER_REPLICAS": "4"}, (4, 2)),
        ({"TRANSCRIBER_CPU_THREADS": "2", "TRANSCRIBER_REPLICAS": "3"}, (3, 1)),
        ({"TRANSCRIBER_CPU_THREADS": "8", "TRANSCRIBER_DEVICE": "cuda"}, (1, 8)),
    ],
)
def test_model_copies_share_the_threads(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[int, int]
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.replicas_count(), s.threads_per_replica()) == expected
