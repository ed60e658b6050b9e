"""The gate that sends a greedily decoded window on to the beam."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from transcriber.engines.gate import (
    COMPRESSION_CEILING,
    LOG_PROB_FLOOR,
    NO_SPEECH_PROB,
    WORD_PROBABILITY,
    Doubt,
    Tally,
    doubt,
)
from transcriber.engines.whisper import _rows


def segment(*probabilities: float, **fields: Any) -> dict[str, Any]:
    words = [
        {"word": f" w{i}", "start": float(i), "end": i + 0.5, "probability": p}
        for i, p in enumerate(probabilities)
    ]
    base = {"text": " ".join(w["word"] for w in words) or "", "avg_logprob": -0.2,
            "no_speech_prob": 0.05, "compression_ratio": 1.4, "words": words}  # fmt: skip
    return {**base, **fields}


def test_sure_words_stay_greedy() -> None:
    assert doubt([segment(0.9, 0.8, WORD_PROBABILITY)]) is None
    assert doubt([segment(0.99), segment(0.7, 0.95)]) is None


def test_one_unsure_word_sends_the_window_to_the_beam() -> None:
    assert doubt([segment(0.9, WORD_PROBABILITY - 0.01, 0.9)]) is Doubt.unsure_word
    # in any segment of the window
    assert doubt([segment(0.9), segment(0.95, 0.05)]) is Doubt.unsure_word


def test_whispers_fallback_rules_send_it_too() -> None:
    loop = segment(0.9, 0.9, compression_ratio=COMPRESSION_CEILING + 0.1)
    assert doubt([loop]) is Doubt.repetitive
    unlikely = segment(0.9, avg_logprob=LOG_PROB_FLOOR - 0.1)
    assert doubt([unlikely]) is Doubt.improbable


def test_silence_is_not_worth_a_beam() -> None:
    silent = segment(0.9, avg_logprob=LOG_PROB_FLOOR - 0.5, no_speech_prob=NO_SPEECH_PROB + 0.1)
    assert doubt([silent]) is None
    assert doubt([]) is None
    # No text at all: nothing was said that a beam could say better.
    assert doubt([segment(text=" ", avg_logprob=-3.0, compression_ratio=9.0)]) is None


def test_tally_counts_windows_from_several_threads() -> None:
    tally = Tally()
    batches = [[None, Doubt.unsure_word], [Doubt.repetitive, None, Doubt.unsure_word]] * 50
    threads = [threading.Thread(target=tally.add, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tally.windows == 250
    assert tally.beamed == {Doubt.unsure_word: 100, Doubt.repetitive: 50}
    assert str(tally).startswith("150 of 250 greedy windows decoded again with the beam")


def test_rows_takes_those_windows_of_an_encoder_output() -> None:
    import ctranslate2

    encoded = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    view = ctranslate2.StorageView.from_array(encoded)
    picked = np.asarray(_rows(view, [1, 3]))
    assert picked.shape == (2, 3, 2)
    assert np.array_equal(picked, encoded[[1, 3]])


def test_full_beam_is_the_default_and_the_gate_an_option() -> None:
    from pydantic import ValidationError

    from transcriber.config import Settings

    assert Settings(_env_file=None).decoding == "beam"  # type: ignore[call-arg]
    assert Settings(decoding="gated", _env_file=None).decoding == "gated"  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="decoding"):
        Settings(decoding="greedy", _env_file=None)  # type: ignore[call-arg]
