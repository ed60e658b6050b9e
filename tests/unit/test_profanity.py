"""filter_profanity's masking: swearing in English and Russian, and the words that only
look like it."""

from __future__ import annotations

import pytest

from transcriber.domain import Segment, Transcript, Word
from transcriber.profanity import censor, mask


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("What the fuck, this is bullshit!", "What the f***, this is b*******!"),
        ("Motherfucker.", "M***********."),
        ("Fucking hell, you bitch", "F****** hell, you b****"),
        ("Бля, это пиздец. Нахуй!", "Б**, это п*****. Н****!"),
        ("Охуенно, заебал, уёбок, ебать.", "О******, з*****, у****, е****."),
        ("Ёбаный стыд, мудак", "Ё***** стыд, м****"),
    ],
)
def test_swearing_keeps_its_first_letter(said: str, shown: str) -> None:
    assert mask(said) == shown


def test_words_that_only_contain_a_swear_word_are_left_alone() -> None:
    clean = (
        "Scunthorpe, shiitake, dickens, assess, cocktail, Hancock, Titchmarsh;"
        " бляха, застрахуй, страхуется, учебный, себе, ребёнок, тебя, хлеба, небо,"
        " художник, хутор, хуже, Хуан, мудрый, сук, скипидар"
    )
    assert mask(clean) == clean


def test_a_transcript_is_masked_in_its_text_and_its_words() -> None:
    seg = Segment(1, 0.0, 1.0, " Ну ёб твою мать", words=(Word(0.0, 0.3, " ёб", 0.9),))
    t = censor(Transcript((seg,), "ru", 0.9, 1.0))
    assert (t.segments[0].text, t.segments[0].words[0].word) == (" Ну ё* твою мать", " ё*")
    assert t.language == "ru" and t.duration == 1.0
