"""faster-whisper / CTranslate2 engine, int8 on CPU, batched over speech windows."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from transcriber.domain import Segment, Word
from transcriber.engines.base import DecodeOptions, WindowResult
from transcriber.engines.segmenter import segments_from_words
from transcriber.media.windows import SpeechWindow

log = logging.getLogger(__name__)

# Whisper's usual rule for "this window was not speech": both must hold.
NO_SPEECH_PROB = 0.6
LOG_PROB_FLOOR = -1.0


class WhisperEngine:
    name = "whisper"

    def __init__(self, model: Any, model_name: str, batch_size: int = 8) -> None:
        from faster_whisper import BatchedInferencePipeline

        self.model = model  # faster_whisper.WhisperModel
        self.model_name = model_name
        self.batch_size = batch_size
        self._pipeline = BatchedInferencePipeline(model)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def _features(self, windows: list[SpeechWindow]) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        fe = self.model.feature_extractor
        return np.stack([pad_or_trim(fe(w.audio)[..., :-1]) for w in windows])

    def detect_language(self, windows: list[SpeechWindow]) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        encoded = self.model.encode(self._features(windows))
        totals: dict[str, float] = {}
        weights = [w.duration for w in windows]
        for weight, probs in zip(weights, self.model.model.detect_language(encoded), strict=True):
            for token, p in probs:
                lang = token[2:-2]
                totals[lang] = totals.get(lang, 0.0) + weight * p
        norm = sum(weights) or 1.0
        lang, score = max(totals.items(), key=lambda kv: kv[1])
        return lang, round(score / norm, 4)

    def transcribe(
        self, windows: Iterable[SpeechWindow], options: DecodeOptions
    ) -> Iterator[WindowResult]:
        batch: list[SpeechWindow] = []
        for w in windows:
            batch.append(w)
            if len(batch) >= self.batch_size:
                yield from self._run(batch, options)
                batch = []
        if batch:
            yield from self._run(batch, options)

    def _run(self, batch: list[SpeechWindow], options: DecodeOptions) -> Iterator[WindowResult]:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

        language = options.language if self.multilingual else "en"
        tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language
        )
        fw_options = TranscriptionOptions(
            beam_size=options.beam_size,
            best_of=1,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            log_prob_threshold=LOG_PROB_FLOOR,
            no_speech_threshold=NO_SPEECH_PROB,
            compression_ratio_threshold=2.4,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            temperatures=[0.0],
            initial_prompt=options.initial_prompt,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=True,
            max_initial_timestamp=0.0,
            word_timestamps=True,  # segment bounds come from word times
            prepend_punctuations="\"'“¿([{-«",
            append_punctuations="\"'.。,，!！?？:：”)]}、»",
            multilingual=False,
            max_new_tokens=None,
            clip_timestamps=[],
            hallucination_silence_threshold=None,
            hotwords=None,
        )
        meta = [{"offset": 0.0, "duration": w.duration, "segments": []} for w in batch]
        self._pipeline.last_speech_timestamp = 0.0
        outputs = self._pipeline.forward(self._features(batch), tokenizer, meta, fw_options)
        for window, subsegments in zip(batch, outputs, strict=True):
            yield WindowResult(window, tuple(self._segments(window, subsegments)))

    @staticmethod
    def _segments(window: SpeechWindow, raw: list[dict[str, Any]]) -> Iterator[Segment]:
        for s in raw:
            if not s["text"].strip():
                continue
            if s["no_speech_prob"] > NO_SPEECH_PROB and s["avg_logprob"] < LOG_PROB_FLOOR:
                continue
            words = [
                Word(
                    start=window.to_file_time(min(w["start"], window.duration)),
                    end=window.to_file_time(min(w["end"], window.duration), is_end=True),
                    word=w["word"],
                    probability=round(float(w["probability"]), 4),
                )
                for w in s.get("words") or ()
            ]
            yield from segments_from_words(
                words,
                avg_logprob=round(float(s["avg_logprob"]), 4),
                no_speech_prob=round(float(s["no_speech_prob"]), 4),
            )
