"""Timing a given text against audio with Whisper's cross-attention (no decoding).

Used when a person edits a transcript: the edited text of one segment is aligned to
that segment's audio by the model that transcribed it, the same way faster-whisper
times the words it decodes (CTranslate2's `align` over the encoder output, with the
alignment heads' attention and a median filter), so new words get the times at which
they are said.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transcriber.domain import Word

# Punctuation that belongs to the next word, and to the previous one (faster-whisper's).
PREPEND_PUNCTUATION = "\"'“¿([{-«"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、»"
# The encoder sees 30 s at a time: a longer stretch cannot be aligned in one pass.
MAX_ALIGN_S = 30.0


def align_text(model: Any, audio: np.ndarray, text: str, language: str) -> list[Word]:
    """The words of `text` with their times in `audio` (16 kHz mono, seconds from its
    start). `model` is a faster_whisper.WhisperModel; `language` a Whisper code."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import merge_punctuations

    multilingual = bool(model.model.is_multilingual)
    tokenizer = Tokenizer(
        model.hf_tokenizer,
        multilingual,
        task="transcribe",
        language=language if multilingual else "en",
    )
    tokens = [t for t in tokenizer.encode(" " + text.strip()) if t < tokenizer.eot]
    if not tokens or not len(audio):
        return []
    mel = model.feature_extractor(audio)[..., :-1]
    frames = min(int(mel.shape[-1]), int(model.feature_extractor.nb_max_frames))
    encoded = model.encode(pad_or_trim(mel))
    (alignment,) = model.find_alignment(tokenizer, [tokens], encoded, [frames])
    merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
    return [
        Word(
            start=round(float(a["start"]), 3),
            end=round(float(a["end"]), 3),
            word=str(a["word"]),
            probability=round(float(a["probability"]), 4),
        )
        for a in alignment
        if a["word"]
    ]
