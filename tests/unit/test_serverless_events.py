"""The serverless worker's events and result keys, which need no S3 (the worker itself is
tested against SeaweedFS in tests/integration/test_serverless.py)."""

from __future__ import annotations

import re

import pytest

from transcriber.errors import InputError
from transcriber.serverless import default_file_id, result_key


def test_an_object_without_a_file_id_is_named_by_its_whole_key() -> None:
    assert default_file_id("calls/jan/rec.flac", "results/") == "calls/jan/rec.flac"
    assert result_key("results/", "calls/jan/rec.flac") == "results/calls/jan/rec.flac.json"
    # Keys that cannot be result keys get a digest: still one result per object.
    odd = ["a/../b.wav", "a//b.wav", "./b.wav", "tab\t.wav", "x" * 1100]
    ids = [default_file_id(k, "results/") for k in odd]
    assert all(i.startswith("sha256-") and len(i) == 71 for i in ids)
    assert len(set(ids)) == len(odd)
    assert result_key("results/", "x" * 1010) == f"results/{'x' * 1010}.json"


@pytest.mark.parametrize(
    ("file_id", "message"),
    [
        ("x" * 1100, "file_id is too long: its result key would be 1113 bytes"),
        ("../../in/ru", "file_id '../../in/ru' has an empty, '.' or '..' path segment"),
        ("/abs", "has an empty, '.' or '..' path segment"),
        ("a\0b", "file_id 'a\\x00b' contains control characters"),
        ("", "file_id is empty"),
    ],
)
def test_a_file_id_that_cannot_name_a_result_is_refused(file_id: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        result_key("results/", file_id)
