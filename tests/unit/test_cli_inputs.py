"""How the CLI's arguments become inputs and output names (transcriber/cli_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.cli_inputs import check_not_folder, expand_sources, output_stems
from transcriber.errors import InputError


def test_equal_stems_get_numbers_in_order() -> None:
    names = ["a/intro.mp4", "b/intro.mp4", "intro-2.wav", "c/intro.mkv", "stdin"]
    assert output_stems(names) == ["intro", "intro-2", "intro-2-2", "intro-3", "stdin"]


def test_a_folder_is_its_media_files_sorted(tmp_path: Path) -> None:
    for name in ["b.MP3", "a.mkv", "notes.txt", "a.srt", ".hidden.wav"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "inner.wav").mkdir()  # a folder with a media suffix is not a file
    found = expand_sources(["one.wav", str(tmp_path), "https://host/x.mp3", "-"])
    assert found == [
        "one.wav",
        str(tmp_path / "a.mkv"),
        str(tmp_path / "b.MP3"),
        "https://host/x.mp3",
        "-",
    ]


def test_a_folder_without_media_is_named_and_stdin_twice_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    # The folder stays an input of its own, to fail alone: the others still run.
    assert expand_sources([str(tmp_path), "a.wav"]) == [str(tmp_path), "a.wav"]
    with pytest.raises(InputError, match="no audio or video file directly in this folder"):
        check_not_folder(str(tmp_path))
    check_not_folder("a.wav")  # a file, even a missing one, is the decoder's to judge
    with pytest.raises(InputError, match="only once"):
        expand_sources(["-", "a.wav", "-"])
