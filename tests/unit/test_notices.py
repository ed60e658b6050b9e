"""The rule for the notices a result gets as a whole (the pipeline's `verdicts`)."""

from __future__ import annotations

from transcriber.domain import NoticeCode, Segment
from transcriber.pipeline import LANGUAGE_SURE, verdicts

SAID = [Segment(1, 0.0, 2.0, "привет")]


def test_a_detected_language_below_the_bar_is_called_uncertain() -> None:
    (n,) = verdicts(SAID, "ru", LANGUAGE_SURE - 0.08, 12.0, True)
    assert n.code is NoticeCode.language_uncertain
    assert n.values == {"language": "ru", "probability": 0.42}
    assert "detected as ru with a confidence of only 0.42" in n.message
    assert verdicts(SAID, "ru", LANGUAGE_SURE, 12.0, True) == []
    assert verdicts(SAID, "ru", 0.97, 12.0, True) == []
    # A language the user named was not detected: no confidence to doubt.
    assert verdicts(SAID, "ru", None, 12.0, True) == []


def test_an_empty_transcript_says_whether_any_speech_was_heard() -> None:
    (quiet,) = verdicts([], None, None, 1799.6, False)
    assert quiet.code is NoticeCode.no_speech
    assert quiet.message == "no speech was found in the 1799 s of audio"
    assert quiet.values == {"seconds": 1799, "speech_found": False}
    (short,) = verdicts([], None, None, 4.608, False)
    assert short.message == "no speech was found in the 4.6 s of audio"
    (music,) = verdicts([], "en", 0.3, 60.0, True)
    assert music.message == "no words were recognised in the 60 s of audio"
    # With no words, the language guess is not worth a second notice.
    assert [n.code for n in verdicts([], "en", 0.3, 60.0, True)] == [NoticeCode.no_speech]
