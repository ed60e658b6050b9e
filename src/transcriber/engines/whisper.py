"""faster-whisper / CTranslate2 engine, int8 on CPU, batched over speech windows, with
several batches decoded at once on model replicas (engines/parallel.py).

Each batch is encoded once and beam-searched. With `DecodeOptions.gated` its windows
are decoded greedily first, and only those whose words the gate finds unsure
(engines/gate.py) are decoded again with the beam, from the same encoder output.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcriber.domain import Segment, Word
from transcriber.engines.align import APPEND_PUNCTUATION, PREPEND_PUNCTUATION, align_text
from transcriber.engines.base import DecodeOptions, WindowResult
from transcriber.engines.gate import (
    COMPRESSION_CEILING,
    LOG_PROB_FLOOR,
    NO_SPEECH_PROB,
    Tally,
    doubt,
)
from transcriber.engines.parallel import ordered_map
from transcriber.engines.segmenter import segments_from_words
from transcriber.media.windows import SpeechWindow

log = logging.getLogger(__name__)

# Windows per encoder call. The encoder's working memory grows with the batch (attention
# over 1500 frames per window) while its speed per window does not (docs/performance.md),
# so a larger batch of windows is encoded in parts of this size and decoded together.
ENCODE_BATCH = 2
# Decoding a window at once, Whisper sometimes ends the text early, most often when the
# voice or the recording changes inside the window, and the rest of the window is lost
# (sequential decoding would seek on from the last word instead). A stretch at least this
# long without a single word is decoded again on its own.
RECOVER_GAP_S = 3.0
# A stretch decoded again can end early the same way (two changes of voice in one window:
# the second is skipped on the second look too), so what is recovered is searched for
# gaps again, this many rounds in all. Each round needs a gap of RECOVER_GAP_S inside the
# last, so it ends; most windows need none.
RECOVER_ROUNDS = 3
# With no language named, a window whose own most likely language is another than the
# file's, with at least this probability, is decoded in its own language. Windows that
# did change language were read at 0.90-1.00; Russian read alone in 2-3 s pieces (a
# stretch decoded again, a file's last window) under noise, music, clipping or a phone
# band came out as another language at 0.5 or more 10 times in 1008, at 0.7 or more 3
# times (docs/performance.md).
WINDOW_LANGUAGE_SURE = 0.7
# Where Whisper's text skips a stretch of the window, the word alignment must still pass
# through the skipped audio, and often lays one word over all of it (at 0.8x speed, a
# "printing" was timed over 7.6 s of speech that was never transcribed, 5 s before it was
# said): a word timed this long does not count as covering its stretch when skipped
# stretches are looked for, and gives way to what decoding that stretch again finds.
STRETCHED_WORD_S = 2.5


class WhisperEngine:
    name = "whisper"

    def __init__(
        self,
        model: Any,
        model_name: str,
        batch_size: int = 4,
        replicas: int = 1,
        keep_encoding: bool = True,
    ) -> None:
        self.model = model  # faster_whisper.WhisperModel
        self.model_name = model_name
        self.batch_size = batch_size
        # Batches decoded at once: one per CTranslate2 replica the model was loaded with.
        self.replicas = replicas
        # The first batch's encoding, kept by detect_language for transcribe; per thread,
        # as a service may detect and transcribe on several threads at once. An engine
        # that only detects keeps nothing: no transcription would take it.
        self.keep_encoding = keep_encoding
        self._local = threading.local()

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
        features = self._features(windows)
        encoded = self._encode(features)
        # These windows are usually the first batch: transcribing them reuses this work.
        if self.keep_encoding:
            self._local.kept = _Encoded(tuple(windows), features, encoded)
        totals: dict[str, float] = {}
        weights = [w.duration for w in windows]
        for weight, probs in zip(weights, self.model.model.detect_language(encoded), strict=True):
            for token, p in probs:
                lang = token[2:-2]
                totals[lang] = totals.get(lang, 0.0) + weight * p
        norm = sum(weights) or 1.0
        lang, score = max(totals.items(), key=lambda kv: kv[1])
        return lang, round(score / norm, 4)

    def align(self, audio: np.ndarray, text: str, language: str) -> list[Word]:
        """The words of `text` timed in `audio` (engines/align.py)."""
        return align_text(self.model, audio, text, language)

    def transcribe(
        self, windows: Iterable[SpeechWindow], options: DecodeOptions
    ) -> Iterator[WindowResult]:
        tally = Tally()

        def run(job: tuple[list[SpeechWindow], _Encoded | None]) -> list[WindowResult]:
            return self._run(job[0], options, job[1], tally)

        for results in ordered_map(run, self._batches(windows), self.replicas):
            yield from results
        if tally.windows:
            log.info("%s", tally)

    def _batches(
        self, windows: Iterable[SpeechWindow]
    ) -> Iterator[tuple[list[SpeechWindow], _Encoded | None]]:
        """Batches of windows, each with its encoding when detect_language kept it.

        With several model copies, a batch goes out only once the one after it is
        complete too, and the last windows of the file go out one by one: a copy left
        with nothing to do while another works through a whole batch at the end of a
        file would waste its core for as long (a few seconds per file).
        """
        kept: _Encoded | None = getattr(self._local, "kept", None)
        self._local.kept = None
        it = iter(windows)
        buffer: list[SpeechWindow] = []
        if kept is not None:
            head = list(itertools.islice(it, len(kept.windows)))
            if kept.holds(head):
                yield head, kept
            else:
                buffer = head
        size = self.batch_size
        ahead = size if self.replicas > 1 else 0
        for window in it:
            buffer.append(window)
            while len(buffer) >= size + ahead:
                yield buffer[:size], None
                buffer = buffer[size:]
        step = 1 if self.replicas > 1 else size
        for i in range(0, len(buffer), step):
            yield buffer[i : i + step], None

    def _run(
        self,
        batch: list[SpeechWindow],
        options: DecodeOptions,
        encoded: _Encoded | None = None,
        tally: Tally | None = None,
    ) -> list[WindowResult]:
        raw = self._decode(batch, options, encoded, tally)
        recovered: list[list[Segment]] = [[] for _ in batch]
        if options.recover_gaps:
            retry = [
                (i, w.slice(a, b))
                for i, (w, r) in enumerate(zip(batch, raw, strict=True))
                for a, b in skipped_spans(r, w.duration)
            ]
            for _ in range(RECOVER_ROUNDS):
                if not retry:
                    break
                log.debug("decoding %d skipped stretch(es) again", len(retry))
                gaps = []
                for k in range(0, len(retry), self.batch_size):
                    part = retry[k : k + self.batch_size]
                    again = self._decode([w for _, w in part], options, tally=tally)
                    for (i, w), r in zip(part, again, strict=True):
                        kept = [s for s in r if is_confident(s)]
                        recovered[i] += self._segments(w, kept)
                        gaps += [(i, w.slice(a, b)) for a, b in skipped_spans(kept, w.duration)]
                retry = gaps
        found = [
            list(self._segments(w, _without_stretched(w, r, again))) + again
            for w, r, again in zip(batch, raw, recovered, strict=True)
        ]
        return [
            WindowResult(window, tuple(sorted(segments, key=lambda s: (s.start, s.end))))
            for window, segments in zip(batch, found, strict=True)
        ]

    def _decode(
        self,
        batch: list[SpeechWindow],
        options: DecodeOptions,
        encoded: _Encoded | None = None,
        tally: Tally | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Each window's segments (faster-whisper's dicts, with words), silence dropped.

        The batch is encoded once (or not at all, when detect_language kept its
        encoding); every decoding pass below reads that one encoder output. Windows in
        another language than the file's (`window_languages`) are decoded apart, each
        group in its own language.
        """
        features = encoded.features if encoded is not None else self._features(batch)
        output = encoded.output if encoded is not None else self._encode(features)
        languages = self.window_languages(output, len(batch), options)
        raw: list[list[dict[str, Any]]] = [[] for _ in batch]
        for language in dict.fromkeys(languages):
            rows = [i for i, lang in enumerate(languages) if lang == language]
            whole = len(rows) == len(batch)
            found = self._decode_in(
                language,
                [batch[i] for i in rows],
                features if whole else features[rows],
                output if whole else _rows(output, rows),
                options,
                tally,
            )
            for i, window in zip(rows, found, strict=True):
                raw[i] = window
        return [[s for s in window if is_speech(s)] for window in raw]

    def window_languages(self, output: Any, n: int, options: DecodeOptions) -> list[str | None]:
        """The language to decode each of `n` encoded windows in: the file's, unless the
        user named none and the window is surely in another one (a talk that moves from
        English to Russian after its first minutes would otherwise come out translated,
        or transliterated, in the language of its first windows)."""
        language = options.language if self.multilingual else "en"
        if not (options.detect_each and self.multilingual):
            return [language] * n
        languages: list[str | None] = []
        for probs in self.model.model.detect_language(output):
            token, p = probs[0]
            own = token[2:-2]
            if own != language and p >= WINDOW_LANGUAGE_SURE:
                log.debug("a window in %s (%.2f), not %s", own, p, language)
                languages.append(own)
            else:
                languages.append(language)
        return languages

    def _decode_in(
        self,
        language: str | None,
        batch: list[SpeechWindow],
        features: np.ndarray,
        output: Any,
        options: DecodeOptions,
        tally: Tally | None,
    ) -> list[list[dict[str, Any]]]:
        """Decode encoded windows in one language: greedily first where gated."""
        tokenizer = _tokenizer(self.model, self.multilingual, options.task, language)
        gated = options.beam_size > 1 and options.gated
        first = self._forward(
            batch, features, output, tokenizer, options, 1 if gated else options.beam_size
        )
        if gated:
            doubts = [doubt(raw) for raw in first]
            unsure = [i for i, d in enumerate(doubts) if d is not None]
            if tally is not None:
                tally.add(doubts)
            if unsure:
                again = self._forward(
                    [batch[i] for i in unsure],
                    features[unsure],
                    _rows(output, unsure),
                    tokenizer,
                    options,
                    options.beam_size,
                )
                for i, raw in zip(unsure, again, strict=True):
                    first[i] = raw
        return first

    def _encode(self, features: np.ndarray) -> Any:
        # Split on a CPU only: a GPU's batch memory is what its larger batches are for.
        if len(features) <= ENCODE_BATCH or self.model.model.device != "cpu":
            return self.model.encode(features)
        import ctranslate2

        parts = [
            np.asarray(self.model.encode(features[i : i + ENCODE_BATCH]))
            for i in range(0, len(features), ENCODE_BATCH)
        ]
        return ctranslate2.StorageView.from_array(np.concatenate(parts))

    def _forward(
        self,
        batch: list[SpeechWindow],
        features: np.ndarray,
        output: Any,
        tokenizer: Any,
        options: DecodeOptions,
        beam_size: int,
    ) -> list[list[dict[str, Any]]]:
        """Decode encoded windows with this beam width and align their words."""
        from faster_whisper import BatchedInferencePipeline

        meta = [{"offset": 0.0, "duration": w.duration, "segments": []} for w in batch]
        # A pipeline per call: it keeps state between calls, and batches run on threads.
        pipeline = BatchedInferencePipeline(_WithEncoding(self.model, features, output))
        outputs: list[list[dict[str, Any]]] = pipeline.forward(
            features, tokenizer, meta, _fw_options(tokenizer, options, beam_size)
        )
        return outputs

    @staticmethod
    def _segments(window: SpeechWindow, raw: list[dict[str, Any]]) -> Iterator[Segment]:
        for s in raw:
            words = []
            for w in s.get("words") or ():
                start, end = window.span_to_file_time(
                    min(w["start"], window.duration), min(w["end"], window.duration)
                )
                words.append(Word(start=start, end=end, word=w["word"],
                                  probability=round(float(w["probability"]), 4)))  # fmt: skip
            yield from segments_from_words(
                words,
                avg_logprob=round(float(s["avg_logprob"]), 4),
                no_speech_prob=round(float(s["no_speech_prob"]), 4),
            )


def _tokenizer(model: Any, multilingual: bool, task: str, language: str | None) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, multilingual, task=task, language=language)


def _fw_options(tokenizer: Any, options: DecodeOptions, beam_size: int) -> Any:
    """faster-whisper's options for one decoding pass of a batch."""
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    return TranscriptionOptions(
        beam_size=beam_size,
        best_of=1,
        patience=1.0,
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        log_prob_threshold=LOG_PROB_FLOOR,
        no_speech_threshold=NO_SPEECH_PROB,
        compression_ratio_threshold=COMPRESSION_CEILING,
        condition_on_previous_text=False,
        prompt_reset_on_temperature=0.5,
        temperatures=[0.0],
        initial_prompt=options.initial_prompt,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=True,
        max_initial_timestamp=0.0,
        word_timestamps=True,  # segment bounds come from word times; the gate reads them
        prepend_punctuations=PREPEND_PUNCTUATION,
        append_punctuations=APPEND_PUNCTUATION,
        multilingual=False,
        max_new_tokens=None,
        clip_timestamps=[],
        hallucination_silence_threshold=None,
        hotwords=None,
    )


def _rows(output: Any, rows: list[int]) -> Any:
    """Those windows' rows of a batch's encoder output (a CTranslate2 StorageView), on
    the device the output is on."""
    import ctranslate2

    device = output.device
    host = output if device == "cpu" else output.to_device(ctranslate2.Device.cpu)
    picked = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(host)[rows]))
    return picked if device == "cpu" else picked.to_device(getattr(ctranslate2.Device, device))


@dataclass(frozen=True, slots=True)
class _Encoded:
    """Windows with their features and encoder output (detect_language's work)."""

    windows: tuple[SpeechWindow, ...]
    features: np.ndarray
    output: Any  # ctranslate2.StorageView

    def holds(self, windows: list[SpeechWindow]) -> bool:
        return len(windows) == len(self.windows) and all(
            a is b for a, b in zip(windows, self.windows, strict=True)
        )


class _WithEncoding:
    """The WhisperModel, except that encoding these features returns this encoder output.

    faster-whisper's pipeline encodes the features it is given before decoding them.
    The engine has encoded them already (or detect_language has), so the pipeline gets
    that output instead of a second encoder pass (the encoder is a third of the work
    per window). Anything else goes to the model.
    """

    def __init__(self, model: Any, features: np.ndarray, output: Any) -> None:
        self._model = model
        self._features = features
        self._output = output

    def encode(self, features: np.ndarray) -> Any:
        if features is self._features:
            return self._output
        return self._model.encode(features)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def is_speech(s: dict[str, Any]) -> bool:
    """Whisper's rule: text, unless both the no-speech score and the log-prob say otherwise."""
    if not s["text"].strip():
        return False
    return not (s["no_speech_prob"] > NO_SPEECH_PROB and s["avg_logprob"] < LOG_PROB_FLOOR)


def is_confident(s: dict[str, Any]) -> bool:
    """A second look at a stretch the first pass skipped must be convincing on its own:
    the stretch may be noise or music that the VAD let through."""
    return bool(
        s["no_speech_prob"] <= NO_SPEECH_PROB
        and s["avg_logprob"] >= LOG_PROB_FLOOR
        and s["compression_ratio"] <= COMPRESSION_CEILING
    )


def skipped_spans(raw: list[dict[str, Any]], duration: float) -> list[tuple[float, float]]:
    """Stretches of a window (its own time) of at least RECOVER_GAP_S with no word.

    A window whose transcript has no word at all is left alone: Whisper judged all of
    it not to be speech, and asking again would only invite invented text. A word timed
    over STRETCHED_WORD_S or more covers nothing.
    """
    words = sorted(
        (w["start"], w["end"])
        for s in raw
        for w in s.get("words") or ()
        if w["end"] - w["start"] < STRETCHED_WORD_S
    )
    if not words:
        return []
    edges = [0.0] + [t for w in words for t in w] + [duration]
    spans = []
    for a, b in zip(edges[0::2], edges[1::2], strict=True):
        a, b = max(a, 0.0), min(b, duration)
        if b - a >= RECOVER_GAP_S:
            spans.append((a, b))
    return spans


def _without_stretched(
    window: SpeechWindow, raw: list[dict[str, Any]], recovered: list[Segment]
) -> list[dict[str, Any]]:
    """The window's first-pass segments without the words timed over STRETCHED_WORD_S
    or more that a word recovered from their stretch overlaps: that word's audio was
    decoded again, and its own time was never where it was said."""
    heard = [(w.start, w.end) for s in recovered for w in s.words]
    if not heard:
        return raw

    def replaced(w: dict[str, Any]) -> bool:
        if w["end"] - w["start"] < STRETCHED_WORD_S:
            return False
        start, end = window.span_to_file_time(
            min(w["start"], window.duration), min(w["end"], window.duration)
        )
        return any(a < end and start < b for a, b in heard)

    return [{**s, "words": [w for w in s.get("words") or () if not replaced(w)]} for s in raw]
