"""The CLI and the API read a request the same way (transcriber.options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.config import Settings
from transcriber.domain import ChannelMode, Clip, TranscriptionOptions
from transcriber.errors import OptionError
from transcriber.jobs.codec import options_from_dict, options_to_dict
from transcriber.options import parse_time, request_options


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
    o = request_options(settings, min_speakers=2, max_speakers=4)  # any count asks for it
    assert o.diarize and (o.min_speakers, o.max_speakers) == (2, 4)
    assert request_options(settings, max_speakers=3).diarize


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": "klingon!"}, "is not one Whisper knows"),
        ({"language": "xx"}, "is not one Whisper knows"),
        ({"model": "../../etc", "model_paths": False}, "not a model name"),
        ({"model": "/srv/models/x", "model_paths": False}, "not a folder on the server"),
        ({"model": "whisperr", "model_paths": False}, "not a Whisper model this service knows"),
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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("2.5", 2.5), ("1:30", 90.0), ("01:02:03.5", 3723.5), ("0:09", 9.0),
     (" 12:00 ", 720.0), ("100:00:00", 360000.0)],
)  # fmt: skip
def test_times_are_seconds_or_a_clock(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5", "1:75", "1:60:00", "1::2", "1e3", "nan"])
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(OptionError, match="not a time"):
        parse_time(text)


def test_a_clip_checks_itself_and_survives_the_job_store(settings: Settings) -> None:
    o = request_options(settings, start=12.5, end=60)
    assert o.clip == Clip(12.5, 60.0) and not o.clip.whole
    assert request_options(settings).clip.whole
    assert Clip(10.0).length(25.0) == 15.0 and Clip(10.0).length(None) is None
    assert Clip(10.0, 20.0).length(None) == 10.0 and Clip(10.0, 20.0).length(15.0) == 5.0
    refused = [(5, 5, "must come after"), (-1, None, "from 0 to"),
               (0, float("inf"), "from 0 to"), (float("nan"), 3, "from 0")]  # fmt: skip
    for start, end, message in refused:
        with pytest.raises(OptionError, match=message):
            request_options(settings, start=start, end=end)
    assert options_from_dict(options_to_dict(o)) == o
    old = options_to_dict(request_options(settings))
    del old["clip"]  # a task stored before clips existed
    assert options_from_dict(old).clip.whole
