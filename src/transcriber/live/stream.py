"""Live transcription of one stream: 16 kHz audio in as it arrives, events out.

The method (docs/architecture.md, "Live transcription"):

- The streaming Silero VAD marks utterances. While one is open, its audio so far is
  decoded again each time `step_s` more has arrived (one decode at a time), and the
  words that two decodes in a row agree on are committed (LocalAgreement).
- As soon as the VAD has heard a short quiet after the last speech (its padding),
  the utterance is decoded to that point at once, before the VAD has waited out its
  full silence: if no speech follows, that decode is the utterance's final, so the
  final comes about a decode's time after the speech ended rather than a silence and
  a decode. The VAD's end of speech then turns it into `final` segments.
- The utterance's buffer is bounded: past `max_buffer_s`, its committed words up to
  the last sentence end (or the last committed word) become finals and the buffer is
  cut behind them. The VAD also cuts any region at 30 s.
- Decodes run on the session's worker threads; all state lives on the event loop.
  Finals are decoded one after another, in order; when too many wait, `advance`
  waits too, which stops the reader and so pushes back on a client that sends
  faster than they can be transcribed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np

from transcriber.domain import Segment, Word
from transcriber.engines.base import Engine
from transcriber.engines.segmenter import segments_from_words
from transcriber.live.agreement import LocalAgreement
from transcriber.live.decoder import Decoded, DecodeRequest, decode, prompt_for
from transcriber.live.events import (
    Committed,
    Final,
    LiveEvent,
    Marker,
    Partial,
    SpeechStarted,
    SpeechStopped,
    UtteranceDone,
)
from transcriber.live.speakers import OnlineSpeakers
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.vad import FRAME, Pause, Region, SpeechDetector, VadParams
from transcriber.media.windows import best_cut

log = logging.getLogger(__name__)

# Finals waiting to be decoded before `advance` stops taking audio (backpressure).
FINALS_AHEAD = 2
# A long utterance is cut only at a pause of at least this many VAD frames (~100 ms).
CUT_PAUSE_FRAMES = 3
# ... the longest such pause of the last 4 s of settled words (files look 10 s back: a
# live cut that far back would leave more of the buffer to decode again, and the live
# latency was measured with 4 s).
LIVE_CUT_SEARCH_S = 4.0


@dataclass(frozen=True, slots=True)
class LiveConfig:
    language: str | None  # None: detected on the first utterance
    beam_size: int
    prompt: str | None
    vad: VadParams
    step_s: float = 1.0  # new audio between decodes of an open utterance
    max_buffer_s: float = 15.0
    diarize: bool = False


@dataclass
class _Candidate:
    """A decode of the open utterance up to a quiet point: its final if nothing follows."""

    span: tuple[int, int]  # stream samples
    future: asyncio.Future[Decoded]


@dataclass
class _Utterance:
    id: int
    region_start: int  # the VAD region's first sample: tells regions apart
    buffer_start: int  # first sample still to be finalised (moves when the buffer is cut)
    announced: bool = False
    launched_upto: int = 0  # end of the audio the latest decode was given
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    candidate: _Candidate | None = None


@dataclass
class _FinalJob:
    utterance: int
    start: int  # samples of the stream
    end: int
    audio: np.ndarray
    words: list[Word] | None = None  # already known (a cut buffer's committed words)
    candidate: _Candidate | None = None
    closes: bool = True  # the last job of its utterance
    marker: str | None = None  # no audio: a marker to pass on in order
    closed_at: float | None = None  # monotonic time the VAD's end of speech was taken in


class LiveStream:
    """Call `advance` with each stretch of audio and the VAD's closed regions (see
    `detect`), `end_utterance` to close the open utterance now, and `drain` at the end.
    Read events from `events`; `segments` holds every final, `failure` the first error."""

    def __init__(
        self,
        engine_for: Callable[[], Engine],
        config: LiveConfig,
        executor: Executor,
        speakers: OnlineSpeakers | None = None,
    ) -> None:
        self.config = config
        self.events: asyncio.Queue[LiveEvent | None] = asyncio.Queue()  # None: no more
        self.segments: list[Segment] = []
        self.language = config.language
        self.language_probability: float | None = 1.0 if config.language else None
        self.failure: BaseException | None = None
        self.samples = 0  # 16 kHz samples received
        self.regions: list[Region] = []  # the utterances' audio (bounds only), for diarization
        self._engine_for = engine_for
        self._executor = executor
        self._speakers = speakers
        self._detector = SpeechDetector(config.vad)
        self._vad_origin = 0  # stream sample of the detector's sample 0
        self._pad = self._detector._pad  # samples of padding the VAD adds after speech
        self._wait = max(1, round(config.vad.min_silence_ms * SAMPLE_RATE / 1000))
        self._audio = np.zeros(0, np.float32)
        self._audio_start = 0  # stream sample of _audio[0]
        self._utt: _Utterance | None = None
        self._next_id = 1
        self._said = ""  # the finals' text so far: context for the next decodes
        self._texts: dict[int, list[str]] = {}  # finals of utterances not yet done
        self._jobs: asyncio.Queue[_FinalJob | None] = asyncio.Queue()
        self._waiting = 0  # final jobs queued or running
        self._room = asyncio.Condition()
        self._partial: asyncio.Future[Decoded] | None = None
        self._running: set[asyncio.Future[Decoded]] = set()
        self._finaliser = asyncio.create_task(self._run_finals())

    @property
    def buffered_seconds(self) -> float:
        """Audio the open utterance holds that is not final yet (0 between utterances)."""
        return 0.0 if self._utt is None else _s(self.samples - self._utt.buffer_start)

    # --- audio in (the detector runs on a worker thread, the rest on the loop) ----------
    def detect(self, audio: np.ndarray) -> list[Region]:
        """Run the VAD over the next audio (on a worker thread, one call at a time)."""
        return self._shifted(self._detector.feed(audio))

    def detect_end(self) -> list[Region]:
        """Close the VAD's open region at the end of the audio so far (worker thread)."""
        return self._shifted(self._detector.finish())

    def _shifted(self, regions: list[Region]) -> list[Region]:
        o = self._vad_origin
        return [Region(r.start + o, r.end + o) for r in regions]

    async def advance(self, audio: np.ndarray, regions: list[Region]) -> None:
        """Take the next audio and the regions the VAD closed in it (from `detect`)."""
        self._append(audio)
        for region in regions:
            await self._close(region)
        self._look_ahead()
        self._trim_audio()

    async def end_utterance(self, closed: list[Region]) -> None:
        """Finish the open utterance now (`closed`: from `detect_end`); the VAD starts
        afresh after it. A client's commit (OpenAI's `input_audio_buffer.commit`)."""
        for region in closed:
            await self._close(region)
        self._detector = SpeechDetector(self.config.vad)
        self._vad_origin = self.samples

    async def mark(self, token: str) -> None:
        """Have a `Marker(token)` event follow the finals of all the audio so far."""
        await self._queue_final(_FinalJob(0, 0, 0, np.zeros(0, np.float32), marker=token))

    async def drain(self) -> None:
        """Wait until every final is out. Call once, after the last `advance`."""
        await self._jobs.put(None)
        await self._finaliser
        for future in list(self._running):
            try:
                await future
            except Exception:  # a partial's failure no longer matters
                log.debug("a partial decode failed at the end of a stream", exc_info=True)

    def abandon(self) -> None:
        """Stop the finals' task of a stream that will never be drained."""
        self._finaliser.cancel()

    def _append(self, audio: np.ndarray) -> None:
        if len(audio):
            self._audio = np.concatenate([self._audio, audio]) if len(self._audio) else audio
            self.samples += len(audio)

    def _slice(self, start: int, end: int) -> np.ndarray:
        a, b = max(0, start - self._audio_start), max(0, end - self._audio_start)
        return self._audio[a:b].copy()

    def _trim_audio(self) -> None:
        keep = self._vad_origin + self._detector.earliest_needed()
        if self._utt is not None:
            keep = min(keep, self._utt.buffer_start)
        drop = min(keep - self._audio_start, len(self._audio))
        if drop > 0:
            self._audio = self._audio[drop:].copy()
            self._audio_start += drop

    # --- utterances -----------------------------------------------------------------
    def _open(self, region_start: int) -> _Utterance:
        utt = _Utterance(self._next_id, region_start, region_start, launched_upto=region_start)
        self._next_id += 1
        self._utt = utt
        return utt

    def _announce(self, utt: _Utterance) -> None:
        if not utt.announced:
            utt.announced = True
            self._emit(SpeechStarted(utt.id, round(utt.region_start / SAMPLE_RATE, 3)))

    async def _close(self, region: Region) -> None:
        utt = self._utt
        if utt is None or utt.region_start != region.start:
            utt = self._open(region.start)  # began and ended within one stretch of audio
        self._utt = None
        self.regions.append(Region(region.start, region.end))
        self._announce(utt)
        decided = min(self.samples, max(region.end, region.end - self._pad + self._wait))
        self._emit(SpeechStopped(utt.id, _s(decided), _s(region.end)))
        start = min(utt.buffer_start, region.end)
        candidate = utt.candidate
        if candidate is not None and candidate.span != (start, region.end):
            candidate = None
        job = _FinalJob(utt.id, start, region.end, self._slice(start, region.end), None, candidate,
                        closed_at=time.monotonic())  # fmt: skip
        await self._queue_final(job)

    def _look_ahead(self) -> None:
        """Announce speech, and start a decode of the open utterance when one is due."""
        pending = self._detector.pending()
        if pending is None:
            if self._utt is not None and not self._utt.announced:
                self._utt = None  # too short to count after all
            return
        start = pending.start + self._vad_origin
        end = pending.end + self._vad_origin
        utt = self._utt
        if utt is None or utt.region_start != start:
            utt = self._open(start)
        self._announce(utt)
        quiet = self._detector.quiet_frames * FRAME
        candidate = utt.candidate
        if quiet >= self._pad and end > utt.buffer_start:
            span = (utt.buffer_start, end)
            if candidate is None or (candidate.span != span and candidate.future.done()):
                future = self._decode(utt.buffer_start, self._slice(*span))
                utt.candidate = _Candidate(span, future)
                utt.launched_upto = end
                future.add_done_callback(functools.partial(self._decoded, utt, span))
            return
        busy = self._partial is not None and not self._partial.done()
        due = self.samples - utt.launched_upto >= self.config.step_s * SAMPLE_RATE
        if busy or not due or (candidate is not None and not candidate.future.done()):
            return
        span = (utt.buffer_start, self.samples)
        self._partial = self._decode(utt.buffer_start, self._slice(*span))
        utt.launched_upto = self.samples
        self._partial.add_done_callback(functools.partial(self._decoded, utt, span))

    def _decoded(
        self, utt: _Utterance, span: tuple[int, int], future: asyncio.Future[Decoded]
    ) -> None:
        """A decode of the open utterance came back: commit what agrees, show the rest."""
        if future.cancelled():
            return
        if future.exception() is not None:
            self.failure = self.failure or future.exception()
            return
        if self._utt is not utt or utt.buffer_start != span[0]:
            return  # the utterance ended or was cut meanwhile
        decoded = future.result()
        new = utt.agreement.update(decoded.words)
        log.debug("utterance %d, %.1f-%.1f s: %r; committed %r", utt.id, _s(span[0]), _s(span[1]),
                  _text(list(decoded.words)), _text(new))  # fmt: skip
        if new:
            self._emit(Committed(utt.id, _text(new)))
        stable = _text(utt.agreement.committed)
        text = _text(utt.agreement.committed + utt.agreement.tentative)
        self._emit(Partial(utt.id, text, stable))
        self._cut_if_long(utt)

    def _cut_if_long(self, utt: _Utterance) -> None:
        """Past `max_buffer_s`, the committed words up to a pause become finals.

        The cut is made at one of the VAD's inner pauses (the longest near the end of
        what is committed), never at a word's estimated edge: a word cut in two comes
        back as two wrong ones on each side of the cut.
        """
        words = utt.agreement.committed
        if self.samples - utt.buffer_start < self.config.max_buffer_s * SAMPLE_RATE or not words:
            return
        pending = self._detector.pending()
        if pending is None:
            return
        o = self._vad_origin
        inside = tuple(
            Pause(p.at + o, p.frames)
            for p in pending.pauses
            if p.at + o > utt.buffer_start and p.frames >= CUT_PAUSE_FRAMES
        )
        region = Region(utt.buffer_start, pending.end + o, inside)
        settled = round(words[-1].end * SAMPLE_RATE) - utt.buffer_start
        pause = best_cut(region, settled, LIVE_CUT_SEARCH_S) if settled > 0 else None
        if pause is None:
            return  # no pause yet: the VAD's 30 s limit still bounds the utterance
        cut = pause.at
        taken = [w for w in words if (w.start + w.end) / 2 * SAMPLE_RATE < cut]
        if not taken:
            return
        utt.agreement.cut(len(taken))
        job = _FinalJob(utt.id, utt.buffer_start, cut, self._slice(utt.buffer_start, cut),
                        words=taken, closes=False)  # fmt: skip
        utt.buffer_start = cut
        utt.launched_upto = max(utt.launched_upto, cut)
        utt.candidate = None
        self._waiting += 1
        self._jobs.put_nowait(job)

    # --- finals ---------------------------------------------------------------------
    async def _queue_final(self, job: _FinalJob) -> None:
        async with self._room:
            await self._room.wait_for(lambda: self._waiting < FINALS_AHEAD)
            self._waiting += 1
        self._jobs.put_nowait(job)

    async def _run_finals(self) -> None:
        while (job := await self._jobs.get()) is not None:
            try:
                await self._final(job)
            except Exception as e:
                log.exception("live final failed")
                self.failure = self.failure or e
            finally:
                async with self._room:
                    self._waiting -= 1
                    self._room.notify_all()

    async def _final(self, job: _FinalJob) -> None:
        if job.marker is not None:
            self._emit(Marker(job.marker))
            return
        words = job.words
        logprob = None
        if words is None:
            decoded = None
            if job.candidate is not None:
                try:
                    decoded = await job.candidate.future
                except Exception:
                    log.debug("a look-ahead decode failed; decoding the final again", exc_info=True)
            log.debug("utterance %d: final from %s", job.utterance,
                      "its look-ahead decode" if decoded else "a decode of its own")  # fmt: skip
            if decoded is None:
                decoded = await self._decode(job.start, job.audio)
            words = [w for w in decoded.words if w.start < job.end / SAMPLE_RATE]
            logprob = decoded.avg_logprob
            if self.language is None and decoded.language:
                self.language, self.language_probability = decoded.language, decoded.probability
        segments = list(segments_from_words(words, avg_logprob=logprob, no_speech_prob=None))
        if self._speakers is not None and segments:
            labels = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._speakers.label_segments, job.audio, _s(job.start), segments
            )
            segments = [
                replace(s, speaker=label) for s, label in zip(segments, labels, strict=True)
            ]
        texts = self._texts.setdefault(job.utterance, [])
        for segment in segments:
            numbered = replace(segment, id=len(self.segments) + 1)
            self.segments.append(numbered)
            texts.append(numbered.text)
            self._said = f"{self._said} {numbered.text}".strip()
            delay = None if job.closed_at is None else round(time.monotonic() - job.closed_at, 3)
            self._emit(Final(job.utterance, numbered, delay))
        if job.closes:
            self._emit(UtteranceDone(job.utterance, " ".join(self._texts.pop(job.utterance))))

    def _decode(self, start: int, audio: np.ndarray) -> asyncio.Future[Decoded]:
        request = DecodeRequest(
            audio=audio,
            start=_s(start),
            language=self.language,
            beam_size=self.config.beam_size,
            prompt=prompt_for(self.config.prompt, self._said),
        )
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, decode, self._engine_for, request)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    def _emit(self, event: LiveEvent) -> None:
        self.events.put_nowait(event)


def _s(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


def _text(words: list[Word]) -> str:
    return "".join(w.word for w in words).strip()
