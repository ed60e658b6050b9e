"""The Content-Disposition every download route sends (/api/tasks, versions, /asr, /v1)."""

from __future__ import annotations

import pytest

from transcriber.api.routes.export import content_disposition, download_stem

BRAT = "%D0%91%D1%80%D0%B0%D1%82"  # Брат


@pytest.mark.parametrize(
    ("task_filename", "stem"),
    [
        ("Брат.wav", "Брат"),
        ("...", "transcript"),
        (".wav", "transcript"),
        ("_.mp4", "transcript"),
        (".._.._etc_passwd", "_.._etc_passwd"),  # "_etc_passwd" is no extension
        (" a\r\nb\x00.wav", "ab"),
        ("talk.2024.mp4", "talk.2024"),
    ],
)
def test_a_download_is_named_after_the_tasks_file(task_filename: str, stem: str) -> None:
    assert download_stem(task_filename) == stem


@pytest.mark.parametrize(
    ("name", "label", "header"),
    [
        ("Брат.srt", "", f"filename=\"transcript.srt\"; filename*=UTF-8''{BRAT}.srt"),
        ("Брат.srt", ".v2", f"filename=\"transcript.v2.srt\"; filename*=UTF-8''{BRAT}.v2.srt"),
        ("...srt", "", "filename=\"transcript.srt\"; filename*=UTF-8''transcript.srt"),  # stem ".."
        ("a\r\nb.srt", "", "filename=\"ab.srt\"; filename*=UTF-8''ab.srt"),
        ("my talk.srt", "", "filename=\"my_talk.srt\"; filename*=UTF-8''my%20talk.srt"),
    ],
)  # fmt: skip
def test_both_names_have_a_stem_and_no_control_characters(
    name: str, label: str, header: str
) -> None:
    got = content_disposition(name, label)
    assert got == f"attachment; {header}"
    got.encode("latin-1")  # Starlette sends headers as Latin-1
