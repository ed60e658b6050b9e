"""The one place where the stages are composed: decode → VAD → windows → engine → Transcript.

Everything streams: audio is decoded in chunks, speech windows are cut as the
VAD closes regions, and the engine works through them in batches, so memory
does not grow with the length of the file.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path

from transcriber.config import Settings
from transcriber.domain import (
    ChannelMode,
    Checkpoint,
    Notice,
    NoticeCode,
    Progress,
    Segment,
    SpeakerCount,
    SpeakerStat,
    Stage,
    Transcript,
)
from transcriber.domain import TranscriptionOptions as Options
from transcriber.engines.base import DecodeOptions, Engine, WindowResult
from transcriber.engines.registry import EngineManager
from transcriber.errors import (
    OptionError,
    TooLittleSpeechError,
    UncertainLanguageError,
    UploadTooLargeError,
)
from transcriber.media.crosstalk import LevelTrack, drop_crosstalk
from transcriber.media.decode import MediaInfo, one_sound_on_every_channel, probe, stream_audio
from transcriber.media.frames import SAMPLE_RATE
from transcriber.media.peaks import PeakMeter
from transcriber.media.spool import PcmSpool
from transcriber.media.vad import Region, SpeechDetector, VadParams
from transcriber.media.windows import SpeechWindow, WindowBuilder

ProgressFn = Callable[[Progress], None]
CheckpointFn = Callable[[Checkpoint], None]
"""Called after each batch with a checkpoint step: the segments it added (without words
when the result keeps none) and where the run stands."""
# A language detected with less confidence than this is called uncertain in the notices.
LANGUAGE_SURE = 0.5
# With speaker labels, the share of a run's time that transcribing takes; identifying
# speakers (a second decode and the speaker encoder) takes the rest. Measured on the
# 2-core development machine (docs/performance.md), so that the bar moves evenly and
# does not sit at 100% while speakers are found.
TRANSCRIBE_SHARE = 0.8


class Pipeline:
    def __init__(self, settings: Settings, engines: EngineManager | None = None) -> None:
        self.settings = settings
        self.engines = engines or EngineManager(settings)

    def vad_params(self) -> VadParams:
        s = self.settings
        return VadParams(
            threshold=s.vad_threshold,
            min_silence_ms=s.vad_min_silence_ms,
            speech_pad_ms=s.vad_speech_pad_ms,
        )

    def run(
        self,
        path: str | Path,
        options: Options,
        on_progress: ProgressFn | None = None,
        checkpoint: Checkpoint | None = None,
        on_checkpoint: CheckpointFn | None = None,
        max_duration_s: float | None = None,
        peaks: PeakMeter | None = None,
    ) -> Transcript:
        """Transcribe `path`. `max_duration_s` stops a file whose audio runs longer, which
        its header may not say (a service's limit; the CLI has none). `peaks` is fed the
        audio as it is decoded (a waveform for the web page)."""
        started = time.perf_counter()
        info = probe(path)
        info.check(options.clip, max_duration_s)
        if on_progress is not None:
            length = options.clip.length(info.duration) or 0.0
            on_progress(Progress(Stage.loading, 0.0, 0.0, length))
        with self.engines.use(options.model) as engine:
            return self._transcribe(
                info, engine, options, on_progress, checkpoint, on_checkpoint, max_duration_s,
                started, peaks,
            )  # fmt: skip

    def _transcribe(
        self,
        info: MediaInfo,
        engine: Engine,
        options: Options,
        on_progress: ProgressFn | None,
        checkpoint: Checkpoint | None,
        on_checkpoint: CheckpointFn | None,
        max_duration_s: float | None,
        started: float,
        peaks: PeakMeter | None,
    ) -> Transcript:
        if options.language and options.language != "en" and not engine.multilingual:
            raise OptionError(
                f"model {engine.model_name!r} is English-only and cannot transcribe"
                f" {options.language!r}; use --model base"
            )
        if options.translate and not engine.multilingual:
            raise OptionError(
                f"model {engine.model_name!r} is English-only and cannot translate;"
                " use --model base"
            )
        state = _Run(
            self, info, engine, options, on_progress, on_checkpoint, checkpoint, max_duration_s
        )
        state.peaks = peaks
        if peaks is not None:
            peaks.start = state.origin
        channels: list[int | None] = [None]
        if options.channels == ChannelMode.split:
            # A mono file, or channels that all carry one sound, is transcribed once, as
            # channel 1: a split transcript's labels (and AssemblyAI's channel) stay.
            channels = [0]
            if info.channels >= 2 and one_sound_on_every_channel(info.path):
                state.notices.append(_one_sound(info.channels))
            elif info.channels >= 2:
                channels = list(range(info.channels))
        if options.diarize and len(channels) == 1:
            state.prepare_diarization()
        try:
            for ch in channels:
                state.run_channel(ch)
            state.check_speech()
            segments = sorted(state.segments, key=lambda s: (s.start, s.end))
            speakers: tuple[SpeakerStat, ...] = ()
            if options.diarize and len(channels) == 1:
                segments, speakers = state.diarize(segments)
            elif channels[0] is not None:  # split channels are the speakers: no second pass
                if len(channels) > 1:
                    segments = state.without_echo(segments)
                speakers = speaker_stats(segments)
                state.share = 1.0
        finally:
            state.end_diarization()
        notices = tuple(dict.fromkeys(state.notices + state.verdicts(segments)))
        if not options.word_timestamps:
            segments = [replace(s, words=()) for s in segments]
        numbered = tuple(replace(s, id=i) for i, s in enumerate(segments, start=1))
        return Transcript(
            speakers=speakers,
            segments=numbered,
            language=state.language,
            language_probability=state.language_probability,
            duration=round(state.duration, 3),
            model=engine.model_name,
            engine=engine.name,
            task="translate" if options.translate else "transcribe",
            notices=notices,
            processing_time=round(time.perf_counter() - started, 3),
            timings={k: round(v, 3) for k, v in state.timings.items()},
        )

    def detect_language(
        self, path: str | Path, model: str | None = None, max_duration_s: float | None = None
    ) -> tuple[str, float] | None:
        """The language of the first window of speech (up to 30 s), with its probability;
        None when the file holds no speech (within `max_duration_s` of audio). Runs on
        the engines' detector, not on the engine that transcribes (EngineManager)."""
        info = probe(path)
        with self.engines.use(model or self.settings.model, detector=True) as engine:
            return self._detect_language(info, engine, max_duration_s)

    def _detect_language(
        self, info: MediaInfo, engine: Engine, max_duration_s: float | None
    ) -> tuple[str, float] | None:
        builder = WindowBuilder(SpeechDetector(self.vad_params()), time_offset=info.start_offset)

        def windows() -> Generator[SpeechWindow]:
            for chunk in stream_audio(info.path):
                yield from builder.feed(chunk)
                if check_length(builder, max_duration_s):
                    return
            yield from builder.finish()

        found = windows()
        try:
            first = next(found, None)
        finally:
            found.close()  # the rest of the file is not read
        if first is None:
            return None
        return engine.detect_language([first])


def _load_speaker_models(cache_dir: Path | None) -> None:
    """Load the diarization models into their shared caches ahead of use. A failure is
    left for the speaker pass itself to raise (the caches keep only what loaded)."""
    from transcriber.diarization.campplus import default_encoder
    from transcriber.diarization.segmentation import default_segmenter

    with contextlib.suppress(Exception):
        default_segmenter()
        default_encoder(cache_dir)


def check_length(builder: WindowBuilder, limit_s: float | None) -> bool:
    """True once the audio decoded exceeds `limit_s` (None: no limit)."""
    return limit_s is not None and builder.samples_seen / SAMPLE_RATE > limit_s


def channel_label(ch: int) -> str:
    """The speaker label of a channel transcribed on its own (0-based `ch`)."""
    return f"channel {ch + 1}"


def speaker_stats(segments: list[Segment]) -> tuple[SpeakerStat, ...]:
    """Total speaking time per label, in order of first appearance."""
    totals: dict[str, float] = {}
    for s in segments:
        if s.speaker is not None:
            totals[s.speaker] = totals.get(s.speaker, 0.0) + max(0.0, s.end - s.start)
    return tuple(SpeakerStat(k, round(v, 3)) for k, v in totals.items())


def verdicts(
    segments: list[Segment],
    language: str | None,
    detected_with: float | None,
    seconds: float,
    speech_found: bool,
) -> list[Notice]:
    """Notices on a result as a whole: no words at all, or words in a language that was
    detected (`detected_with` its probability; None when it was given) and may be wrong."""
    if not segments:
        # As a player shows a length, cut to the second (to a tenth under ten seconds).
        n: float = int(seconds) if seconds >= 10 else int(seconds * 10) / 10
        return [
            Notice(
                NoticeCode.no_speech,
                f"no words were recognised in the {n} s of audio"
                if speech_found
                else f"no speech was found in the {n} s of audio",
                {"seconds": n, "speech_found": speech_found},
            )
        ]
    if detected_with is not None and detected_with < LANGUAGE_SURE:
        return [
            Notice(
                NoticeCode.language_uncertain,
                f"the language was detected as {language} with a confidence of only"
                f" {detected_with:.2f}; if that is wrong, name the language",
                {"language": language or "", "probability": round(detected_with, 2)},
            )
        ]
    return []


class _Run:
    """State of one file's run, shared by its channels."""

    def __init__(
        self,
        pipeline: Pipeline,
        info: MediaInfo,
        engine: Engine,
        options: Options,
        on_progress: ProgressFn | None,
        on_checkpoint: CheckpointFn | None,
        checkpoint: Checkpoint | None,
        max_duration_s: float | None,
    ) -> None:
        self.p = pipeline
        self.info = info
        self.engine = engine
        self.options = options
        self.on_progress = on_progress
        self.on_checkpoint = on_checkpoint
        cp = checkpoint or Checkpoint()
        self.segments: list[Segment] = list(cp.segments)
        self.audio_done = dict(cp.audio_done)
        self.language = options.language or cp.language
        self.language_probability = 1.0 if options.language else cp.language_probability
        # File time of the first sample transcribed, and how much is to be transcribed.
        self.origin = info.start_offset + options.clip.start
        self.duration = options.clip.length(info.duration) or 0.0
        self.max_duration_s = max_duration_s
        self.stage = Stage.decoding
        self.timings = {"decode_vad": 0.0, "asr": 0.0, "language": 0.0}
        self.n_channels = 1
        self.regions: list[Region] = []
        self.heard = self.speech = 0  # samples decoded, and of them speech, over channels
        self.notices: list[Notice] = []  # what the decoding had to say about the audio
        self.share = TRANSCRIBE_SHARE if options.diarize else 1.0  # of the bar: transcribing
        self.peaks: PeakMeter | None = None
        self.spool: PcmSpool | None = None
        self.tracks: dict[str, LevelTrack] = {}  # split channels' loudness, by label
        self._loading: threading.Thread | None = None

    def prepare_diarization(self) -> None:
        """Keep the decoded stream for the speaker pass (media/spool.py), and load its
        models meanwhile on a thread of their own (the pyannote method)."""
        if self.p.settings.diarization_method != "pyannote":
            return  # the d-vector method reads the file itself
        self.spool = PcmSpool()
        self._loading = threading.Thread(
            target=_load_speaker_models, args=(self.p.settings.model_dir,), name="speaker-models"
        )
        self._loading.start()

    def end_diarization(self) -> None:
        """Close the spool, and wait for the models' loading: a run that ends first (no
        speech, an error) must not leave onnxruntime loading as the process exits."""
        if self.spool is not None:
            self.spool.close()
        if self._loading is not None:
            self._loading.join()

    def run_channel(self, ch: int | None) -> None:
        key = ch if ch is not None else 0
        if ch is not None:
            self.n_channels = max(self.n_channels, self.info.channels)
        detector = SpeechDetector(self.p.vad_params()) if self.options.vad else None
        builder = WindowBuilder(
            detector, time_offset=self.origin, skip_until=self.audio_done.get(key, 0.0)
        )
        windows = self._timed(self._windows(builder, ch))
        first = list(itertools.islice(windows, self.p.settings.batch_size))
        if self.language is None:
            self.language, self.language_probability = self._detect(first)
            self._check_language()
        # English speech needs no translating; Whisper would only transcribe it anyway.
        translate = self.options.translate and self.language != "en"
        decode = DecodeOptions(
            language=self.language,
            beam_size=self.options.beam_size,
            word_timestamps=self.options.word_timestamps,
            initial_prompt=self.options.initial_prompt,
            # A translation's words are not aligned to the speech closely enough to tell
            # which stretch a window skipped.
            recover_gaps=self.options.vad and not translate,
            task="translate" if translate else "transcribe",
            gated=self.p.settings.decoding == "gated",
            # A translation is English whichever language each window is in.
            detect_each=self.options.language is None and not self.options.translate,
        )
        self._report(Stage.transcribing, key)
        results = self.engine.transcribe(itertools.chain(first, windows), decode)
        for result in self._timed_asr(results):
            self._accept(result, ch, key)
        self.regions = builder.regions
        self.heard += builder.samples_seen
        self.speech += sum(r.end - r.start for r in builder.regions)
        # What was decoded, not what the header claimed: an mp3's length is estimated
        # from its bitrate, and can be far off for VBR or concatenated files.
        self.duration = builder.samples_seen / SAMPLE_RATE or self.duration
        self.audio_done[key] = self.origin + builder.samples_seen / SAMPLE_RATE
        self._report(Stage.transcribing, key)

    def diarize(self, segments: list[Segment]) -> tuple[list[Segment], tuple[SpeakerStat, ...]]:
        from transcriber.diarization import assign_speakers, diarize

        self._report(Stage.diarizing, 0)
        t = time.perf_counter()
        o = self.options
        turns = diarize(
            self.info.path,
            self.regions,
            time_offset=self.origin,
            clip=o.clip,
            num_speakers=o.num_speakers,
            min_speakers=o.min_speakers,
            max_speakers=o.max_speakers,
            cache_dir=self.p.settings.model_dir,
            duration=self.duration,
            method=self.p.settings.diarization_method,
            on_progress=self._report_diarizing,
            audio=self.spool.chunks() if self.spool is not None else None,
            step_s=self.p.settings.diarization_step_s,
        )
        labelled, summary = assign_speakers(segments, turns)
        self.timings["diarization"] = time.perf_counter() - t
        asked = SpeakerCount.of(o.num_speakers, o.min_speakers, o.max_speakers).low
        if asked > 1 and len(summary) < asked and segments:
            # Too little speech, or one voice only: the labels are what the audio holds,
            # not the count asked for, and the reader should know why.
            self.notices.append(
                Notice(
                    NoticeCode.fewer_speakers,
                    f"{asked} speakers were asked for, but only {len(summary)} voice(s)"
                    " could be told apart in the speech",
                    {"asked": asked, "found": len(summary)},
                )
            )
        return list(labelled), tuple(SpeakerStat(s.label, s.seconds, s.turns) for s in summary)

    def without_echo(self, segments: list[Segment]) -> list[Segment]:
        """Split channels: leave out what a channel heard of another (media/crosstalk.py)."""
        kept, echoed = drop_crosstalk(segments, self.tracks, self.origin)
        if echoed:
            self.notices.append(
                Notice(
                    NoticeCode.crosstalk,
                    f"{echoed} stretch(es) of speech heard on one channel were the echo of"
                    " another channel's speaker, and were left out",
                    {"stretches": echoed},
                )
            )
        return kept

    def _windows(self, builder: WindowBuilder, ch: int | None) -> Iterator[SpeechWindow]:
        key = ch if ch is not None else 0
        chunks = stream_audio(
            self.info.path, channel=ch, clip=self.options.clip, notices=self.notices
        )
        track = None
        if ch is not None:  # a fresh track: a resumed run streams every channel again
            track = self.tracks[channel_label(ch)] = LevelTrack()
        at = 0
        for chunk in chunks:
            if track is not None:
                track.feed(chunk)
            if self.spool is not None:
                self.spool.write(chunk)
            if self.peaks is not None:
                self.peaks.feed(chunk, at)
                at += len(chunk)
            yield from builder.feed(chunk)
            if check_length(builder, self.max_duration_s):
                raise UploadTooLargeError(
                    f"{self.info.path}: the audio runs past the limit of"
                    f" {self.max_duration_s:.0f} s (its header did not say how long it is)"
                )
            # Long silence yields no windows, so no progress: let the caller see that this
            # run is alive and still wanted (cancel, shutdown) between chunks anyway.
            self._report(self.stage, key)
        yield from builder.finish()

    def _timed(self, it: Iterator[SpeechWindow]) -> Iterator[SpeechWindow]:
        while True:
            t = time.perf_counter()
            item = next(it, None)
            self.timings["decode_vad"] += time.perf_counter() - t
            if item is None:
                return
            yield item

    def _timed_asr(self, it: Iterator[WindowResult]) -> Iterator[WindowResult]:
        decoding_before = self.timings["decode_vad"]
        while True:
            t = time.perf_counter()
            item = next(it, None)
            # Pulling a result also pulls windows; that share is booked under decode_vad.
            self.timings["asr"] += time.perf_counter() - t
            if item is None:
                self.timings["asr"] -= self.timings["decode_vad"] - decoding_before
                return
            yield item

    def _detect(self, first: list[SpeechWindow]) -> tuple[str | None, float | None]:
        if not first:
            return None, None
        t = time.perf_counter()
        # The whole first batch: the engine reuses this encoding to transcribe it.
        lang, prob = self.engine.detect_language(first)
        self.timings["language"] += time.perf_counter() - t
        return lang, prob

    def verdicts(self, segments: list[Segment]) -> list[Notice]:
        found = self.speech > 0 or not self.options.vad
        sure = None if self.options.language else self.language_probability
        return verdicts(segments, self.language, sure, self.duration, found)

    def check_speech(self) -> None:
        least = self.options.min_speech_fraction
        if least is None or not self.heard:
            return
        share = self.speech / self.heard
        if share < least:
            raise TooLittleSpeechError(
                f"{self.info.path}: {share:.0%} of the audio is speech, below the"
                f" {least:.0%} asked for"
            )

    def _check_language(self) -> None:
        least = self.options.min_language_probability
        sure = self.language_probability
        if least is not None and sure is not None and sure < least:
            raise UncertainLanguageError(
                f"{self.info.path}: the language detected, {self.language}, has a confidence"
                f" of {sure:.2f}, below the {least:.2f} asked for; name the language instead"
            )

    def _accept(self, result: WindowResult, ch: int | None, key: int) -> None:
        label = channel_label(ch) if ch is not None else None
        added = [replace(seg, speaker=label) if label else seg for seg in result.segments]
        self.segments.extend(added)
        self.audio_done[key] = result.window.end_time
        if self.on_checkpoint is not None:
            # Words are dropped at the end unless they are shown or speakers are found.
            if not (self.options.word_timestamps or self.options.diarize):
                added = [replace(seg, words=()) for seg in added]
            self.on_checkpoint(
                Checkpoint(
                    segments=tuple(added),
                    audio_done=dict(self.audio_done),
                    language=self.language,
                    language_probability=self.language_probability,
                )
            )
        self._report(Stage.transcribing, key)

    def _report(self, stage: Stage, key: int) -> None:
        self.stage = stage
        if self.on_progress is None:
            return
        total = self.duration or 0.0
        done = min(self.audio_done.get(key, 0.0) - self.origin, total)
        done = max(done, 0.0)
        channels_before = key if self.n_channels > 1 else 0
        fraction = (channels_before + (done / total if total else 0.0)) / self.n_channels
        fraction = min(1.0, fraction) * self.share
        self.on_progress(Progress(stage, round(fraction, 6), done, total))

    def _report_diarizing(self, seconds: float) -> None:
        """Identifying speakers has decoded `seconds` of the audio again."""
        if self.on_progress is None:
            return
        total = self.duration or 0.0
        part = min(1.0, seconds / total) if total else 0.0
        # The last stretch is the clustering, after the decode: never 100% before it ends.
        fraction = self.share + (1.0 - self.share) * 0.95 * part
        self.on_progress(Progress(Stage.diarizing, round(fraction, 6), total, total))


def _one_sound(channels: int) -> Notice:
    return Notice(
        NoticeCode.one_sound,
        f"the {channels} channels carry the same sound (one recording stored on each),"
        " so it was transcribed once, not channel by channel",
        {"channels": channels},
    )
