"""Corpus WER of the default model on the real dev speech, through the whole pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import eval_rows
from tests.media_factory import load, write_audio
from transcriber.domain import TranscriptionOptions
from transcriber.evaluation.wer import corpus_wer
from transcriber.pipeline import Pipeline

pytestmark = pytest.mark.slow

LIMITS = {"ru": 0.14, "en": 0.06}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_dev_wer(pipeline: Pipeline, eval_root: Path, lang: str) -> None:
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == lang]
    assert rows, f"no {lang} clips in asr.jsonl"
    pairs = []
    for row in rows:
        t = pipeline.run(eval_root / row["path"], TranscriptionOptions(language=lang))
        pairs.append((row["text"], t.text))
        assert t.notices == (), (row["path"], t.notices)  # clean speech: nothing to warn of
    wer = corpus_wer(pairs, lang)
    print(f"\n{lang}: corpus WER {wer:.2%} over {len(rows)} clips")
    assert wer <= LIMITS[lang], f"{lang} WER {wer:.2%} above {LIMITS[lang]:.0%}"


def test_language_detection_reports_probability(pipeline: Pipeline, eval_root: Path) -> None:
    ru = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "ru" and r["sample_rate"] == 16000)
    en = next(r for r in eval_rows("asr.jsonl") if r["lang"] == "en")
    for row in (ru, en):
        t = pipeline.run(eval_root / row["path"], TranscriptionOptions(language=None))
        assert t.language == row["lang"]
        assert t.language_probability is not None and 0.5 < t.language_probability <= 1.0
        assert t.notices == ()


def test_voices_joined_without_pauses_are_all_transcribed(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    """Whisper reading one window at once can end its text early where the voice changes,
    and skip the same way again when the skipped stretch is read on its own (here: the
    second voice); every stretch it skips is read again until it has words or none."""
    paths = [
        "ru/coqui_stt/ru.wav",  # бедняга ребят на его месте должен был быть я
        "ru/golos/001ce26c07c20eaa0d666b824c6c6924.wav",  # шестьдесят тысяч тенге ...
        "ru_more/asterisk_ru/core/agent-alreadyon.wav",  # данный оператор уже ...
        "ru_more/asterisk_ru/core/agent-newlocation.wav",  # наберите новый номер ...
    ]
    joined = np.concatenate([load(eval_root / p) for p in paths])
    path = write_audio(tmp_path / "four.wav", joined)
    text = pipeline.run(path, TranscriptionOptions(language="ru")).text.lower()
    for word in ("бедняга", "тысяч", "сколько", "оператор", "зарегистрирован", "новый"):
        assert word in text, text


def test_speech_in_a_second_language_is_transcribed_in_that_language(
    pipeline: Pipeline, eval_root: Path, tmp_path: Path
) -> None:
    """With no language named, the file's language is detected from its first windows;
    a later window surely in another language is decoded in its own. A talk that turns
    from English to Russian after a minute and a half came out with all of its Russian
    translated into English (131% WER on that part)."""
    rows = eval_rows("asr.jsonl")
    en = [r for r in rows if r["lang"] == "en"]
    ru = [r for r in rows if r["lang"] == "ru"][:8]
    gap = np.zeros(8000, np.float32)
    parts, english_ends = [], 0.0
    for row in en + ru:
        parts += [load(eval_root / row["path"]), gap]
        if row["lang"] == "en":
            english_ends = sum(len(p) for p in parts) / 16000
    path = write_audio(tmp_path / "en_then_ru.wav", np.concatenate(parts))
    t = pipeline.run(path, TranscriptionOptions(language=None))

    assert t.language == "en"  # the first windows' language
    english = " ".join(s.text for s in t.segments if s.end <= english_ends + 0.3)
    russian = " ".join(s.text for s in t.segments if s.start >= english_ends - 0.3)
    assert corpus_wer([(" ".join(r["text"] for r in en), english)], "en") < 0.1, english
    assert corpus_wer([(" ".join(r["text"] for r in ru), russian)], "ru") < 0.35, russian
