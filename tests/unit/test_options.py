"""The CLI and the API read a request the same way (transcriber.options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.config import Settings
from transcriber.domain import ChannelMode, TranscriptionOptions
from transcriber.errors import OptionError
from transcriber.options import request_options


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, model="tiny.en", beam_size=3, model_dir=tmp_path)  # type: ignore[call-arg]


def test_defaults_come_from_the_settings(settings: Settings) -> None:
    o = request_options(settings)
    assert (o.language, o.model, o.beam_size, o.diarize) == (None, "tiny.en", 3, False)
    o = request_options(settings, language="ru", model="base", beam_size=5)
    assert (o.language, o.model, o.beam_size) == ("ru", "base", 5)


def test_a_speaker_count_implies_diarization(settings: Settings) -> None:
    o = request_options(settings, speakers=2, channels=ChannelMode.mix)
    assert o.diarize and o.num_speakers == 2
    assert o.speaker_count().low == o.speaker_count().high == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": "klingon!"}, "is not one Whisper knows"),
        ({"language": "xx"}, "is not one Whisper knows"),
        ({"model": "../../etc", "model_paths": False}, "not a model name"),
        ({"model": "/srv/models/x", "model_paths": False}, "not a folder on the server"),
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers (3) is above max_speakers (2)"),
        ({"speakers": 2, "max_speakers": 1}, "max_speakers (1) is below num_speakers (2)"),
        ({"speakers": 40}, "num_speakers must be between 1 and 32"),
    ],
)
def test_impossible_requests_are_refused(
    settings: Settings, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(OptionError) as e:
        request_options(settings, **kwargs)  # type: ignore[arg-type]
    assert message in e.value.message


def test_options_check_themselves_however_they_are_made() -> None:
    # A stored task's options are rebuilt from JSON by the worker: the same rule holds.
    with pytest.raises(OptionError, match="above max_speakers"):
        TranscriptionOptions(min_speakers=4, max_speakers=2)


def test_language_is_read_leniently_and_paths_only_from_local_users(settings: Settings) -> None:
    assert request_options(settings, language=" RU ").language == "ru"
    assert request_options(settings, language="uk").language == "uk"
    assert request_options(settings, language="AUTO").language is None
    # The CLI's user owns the machine: a folder is fine there.
    assert request_options(settings, model="/srv/models/x").model == "/srv/models/x"
    named = request_options(settings, model="large-v3", model_paths=False)
    assert named.model == "large-v3"
