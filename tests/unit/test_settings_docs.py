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
