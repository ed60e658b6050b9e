"""Probe a media file and stream its first audio stream as 16 kHz float32 chunks.

PyAV runs ffmpeg in-process, so no system ffmpeg is needed. The whole file is
never held in memory: frames are resampled as they are demuxed and handed on
in chunks of a few seconds.

Hostile input is expected: ffmpeg may only read the file itself (no demuxer that
opens other files or URLs), a damaged packet is skipped as a player would skip
it, a stream whose sample rate or layout changes midway is followed, a gap in the
timestamps becomes silence, and the samples handed on are finite and within ±1.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from transcriber.domain import Clip, Notice, NoticeCode
from transcriber.errors import (
    EmptyFileError,
    FileMissingError,
    MediaError,
    NoAudioStreamError,
    NotMediaError,
    OptionError,
    TruncatedMediaError,
    UploadTooLargeError,
)
from transcriber.media.containers import (
    RawPcm,
    caf_cut_short,
    check_wav_size,
    data_end,
    frames_end,
    id3_tags_inside,
    joined_mp4,
    joined_wav,
    matroska_cut_short,
    mp3_length,
    mp4_index_missing,
    ogg_cut_short,
    raw_wav_pcm,
    wav_overflow_s,
    zeros_after_data,
    zeros_from,
)
from transcriber.media.frames import (
    SAMPLE_RATE,
    Cancellation,
    Chunks,
    Clock,
    Mixer,
    SameSound,
    pieces,
)

log = logging.getLogger(__name__)

CHUNK_SECONDS = 5.0
# Container formats whose declared duration is exact, so a short decode means truncation.
# (Raw ADTS, and mp3 without a frame count, estimate it from the bitrate: see
# containers.mp3_length.)
_EXACT_DURATION = {"wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "ogg", "w64", "aiff"}
# Codecs besides PCM and ADPCM whose audio may be all zero bytes (G.722's and G.726's
# silence, DSD's...): a run of zeros at the end of such a file may be sound.
_ZERO_CODECS = {
    "g722",
    "g723_1",
    "g726",
    "g726le",
    "gsm",
    "dsd_lsbf",
    "dsd_msbf",
    "dsd_lsbf_planar",
    "dsd_msbf_planar",
    "sdx2_dpcm",
    "derf_dpcm",
    "interplay_dpcm",
}
# Raw streams of frames whose duration ffmpeg estimates from the bitrate and the file's
# size, so bytes after the last frame (a preallocated file's zeros) count as audio.
_BITRATE_DURATION = {"mp3", "aac", "ac3", "eac3", "dts", "truehd", "mlp"}
# Demuxers that open other files or network addresses named inside the input: a script
# (`ffconcat`, a playlist, SDP) must not make the service read what it names.
_REFUSED_FORMATS = {"concat", "hls", "dash", "sdp", "rtsp", "rtp", "rtp_mpegts", "sap"}
_TS_DISCONT = 0x200  # AVFMT_TS_DISCONT: timestamps are a broadcast clock, not file time
# Above any real audio (DSD is decoded at 352.8 kHz): a header that claims more is damaged.
_MAX_RATE = 1_000_000
# Below any recording of speech (the lowest telephone and voice-codec rates are 4-8 kHz;
# under 1 kHz nothing a voice says above 500 Hz survives): such a header is damaged, and
# believing it would stretch a minute of audio into hours of "silence" to decode.
_MIN_RATE = 1_000
# The most channels ffmpeg's resampler takes (SWR_CH_MAX): more cannot be mixed or split.
_MAX_CHANNELS = 64
# How far past the last packet a container's own bytes may run (an Ogg page, a TS
# packet's headers): the data of a file that ends within this of it has all been read.
_PACKET_SPAN = 1 << 16
# Too many packets that do not decode: the file is damaged, not just scratched.
_BAD_PACKETS = 50
# Frames this short on average (samples, at the stream's rate) over a run of this many:
# no codec or muxer cuts audio so fine (the shortest codec frames are 2.5 ms, 40+ samples
# at 16 kHz). Each frame costs tens of microseconds of Python, so a file of one-sample
# packets decodes slower than it plays and would hold a worker for hours.
_MIN_FRAME_SAMPLES = 16
_FRAME_RUN = 20_000
# A clip this far into a file is reached by seeking (in containers that seek by time),
# to this long before its start: the frames decoded first after a seek may be imperfect.
_SEEK_MIN_S = 60.0
_PREROLL_S = 2.0
_SEEKABLE = {"wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "ogg", "w64", "aiff"}
# How far into a stream to look for audible audio to judge whether its channels cancel.
_CANCEL_SCAN_S = 600.0


@dataclass(frozen=True, slots=True)
class MediaInfo:
    path: Path
    format_name: str
    codec: str
    duration: float | None  # seconds, as the container declares it
    sample_rate: int
    channels: int
    has_video: bool
    start_offset: float  # seconds of the first audio sample on the file's own time axis
    exact: bool = False  # the duration is the stream's own, so a shorter decode is a loss
    tracks: int = 1  # audio streams in the file
    track: int = 0  # the one transcribed (audio_track), counted from 0 among them
    track_language: str | None = None  # its language tag, when it has a real one

    def check(self, clip: Clip, limit_s: float | None) -> None:
        """Refuse before any work a clip that starts after the audio ends, and audio to
        transcribe longer than `limit_s` (None: no limit), as far as the header tells."""
        if self.exact and self.duration is not None and clip.start >= self.duration:
            raise OptionError(
                f"{self.path}: the clip starts at {clip.start:g} s, but the audio is only"
                f" {self.duration:.1f} s long"
            )
        length = clip.length(self.duration)
        if limit_s is not None and length is not None and length > limit_s:
            what = "media is" if clip.whole else "the clip is"
            raise UploadTooLargeError(
                f"{self.path}: {what} {length:.0f} s long; the limit is {limit_s:.0f} s"
            )


@functools.cache
def _demuxers() -> str:
    names = []
    for name in sorted(av.formats_available):
        try:
            if av.ContainerFormat(name).is_input and name not in _REFUSED_FORMATS:
                names.append(name)
        except ValueError:
            continue
    return ",".join(names)


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise FileMissingError(f"{path}: file not found")
    if not path.is_file():
        raise NotMediaError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise EmptyFileError(f"{path}: file is empty (0 bytes)")
    if (raw := raw_wav_pcm(path)) is not None:
        return _open_raw(path, raw)
    # "file:" keeps a name such as "pipe:0" or "concat:a|b" from being read as a protocol.
    options = {"format_whitelist": _demuxers(), "protocol_whitelist": "file"}
    url = f"file:{path}"
    if (zeros := zeros_after_data(path)) is not None:  # read the WAV or CAF up to them
        url = f"subfile,,start,0,end,{zeros},,:file:{path}"
        options["protocol_whitelist"] = "subfile,file"
    if (overflow := wav_overflow_s(path)) is not None:
        # The header states less audio than follows it: read on to the end of the file.
        log.info("%s: %.1f s of audio past the WAV header's data size", path, overflow)
        options["ignore_length"] = "1"
    try:
        container = av.open(url, options=options, metadata_errors="ignore")
    except av.FFmpegError as e:
        if mp4_index_missing(path):
            raise TruncatedMediaError(
                f"{path}: the MP4/MOV file has no index (its moov atom, which says where the"
                " audio is): the recording was never finished (the app or camera stopped"
                " before it closed the file) or the file was cut short"
            ) from e
        if (cut := caf_cut_short(path)) is not None:
            raise TruncatedMediaError(
                f"{path}: the CAF file is incomplete: {cut}; the recording was never finished"
                " (the app stopped before it closed the file) or the file was cut short"
            ) from e
        kind = _sniff(path)
        if kind is not None:
            raise NotMediaError(f"{path}: cannot be read as audio or video: it is {kind}") from e
        raise NotMediaError(
            f"{path}: cannot be read as audio or video ({_reason(e)});"
            " it is not a media file, or it is damaged or truncated"
        ) from e
    fmt = container.format.name
    stat = path.stat()
    end = _audio_end(path, stat.st_size, stat.st_mtime_ns, fmt, _zeros_are_audio(container))
    if end is not None:
        # Bytes that are not audio after the last frame (a preallocated file's zeros, or
        # junk): a bitrate estimate counts them as audio, a demuxer reads them as damage
        # or as one packet as large as they are. Read up to the last frame only.
        container.close()
        log.info("%s: the %d bytes after its last audio frame are not audio", path, size - end)
        url = f"subfile,,start,0,end,{end},,:file:{path}"
        options["protocol_whitelist"] = "subfile,file"
        try:
            container = av.open(url, format=fmt, options=options, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise NotMediaError(f"{path}: cannot be read as audio ({_reason(e)})") from e
    return container


@functools.lru_cache(maxsize=64)
def _audio_end(path: Path, size: int, mtime_ns: int, fmt: str, zeros_are_audio: bool) -> int | None:
    """Where a file's audio ends when bytes that are not audio follow it; None when it
    ends in audio. Kept per version of the file (`size`, `mtime_ns`): a task opens its
    file several times (probe at upload, probe and decode in the pipeline)."""
    if fmt in _BITRATE_DURATION:
        return frames_end(path, fmt)
    return None if zeros_are_audio else zeros_from(path)


def _zeros_are_audio(container: av.container.InputContainer) -> bool:
    """Whether zero bytes can be this file's audio: PCM and ADPCM silence is zeros (a WAV
    that ends in silence), while every frame of a compressed codec has a header."""
    if not container.streams.audio:
        return True  # nothing to read, so nothing to bound
    ctx = audio_track(container).codec_context
    if ctx is None:  # a codec ffmpeg cannot decode: _info names it
        return True
    name = ctx.name
    return name.startswith(("pcm_", "adpcm_")) or name in _ZERO_CODECS


def _open_raw(path: Path, raw: RawPcm) -> av.container.InputContainer:
    """A WAV's samples, read as the raw PCM they are (containers.raw_wav_pcm)."""
    what = "big-endian WAV (RIFX)" if raw.big_endian else "WAV"
    if not raw.big_endian:
        check_wav_size(path)  # as for any WAV: a file cut short of its header's size
    if raw.end <= raw.start:
        raise EmptyFileError(f"{path}: the {what} holds no samples")
    options = {
        "sample_rate": str(raw.rate),
        "ch_layout": f"{raw.channels} channels",  # no order, as a WAV without a mask
    }
    try:
        if raw.more:  # several data chunks: read as one run of samples
            spans = _Spans(path, ((raw.start, raw.end), *raw.more))
            return av.open(
                spans, "r", format=raw.demuxer, options=options, metadata_errors="ignore"
            )
        # ffmpeg's subfile protocol bounds the read to the data chunk: chunks after it
        # are not audio.
        url = f"subfile,,start,{raw.start},end,{raw.end},,:file:{path}"
        options["protocol_whitelist"] = "subfile,file"
        return av.open(url, format=raw.demuxer, options=options, metadata_errors="ignore")
    except av.FFmpegError as e:
        raise NotMediaError(f"{path}: cannot read its {what} audio ({_reason(e)})") from e


class _Spans(io.RawIOBase):
    """The byte ranges `spans` of a file, read as one file (a WAV's data chunks)."""

    def __init__(self, path: Path, spans: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._spans = spans
        self._size = sum(end - start for start, end in spans)
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done, skip = 0, self._at
        for start, end in self._spans:
            if skip >= end - start:
                skip -= end - start
                continue
            self._file.seek(start + skip)
            n = self._file.readinto(view[done : done + min(len(view) - done, end - start - skip)])
            done, skip = done + (n or 0), 0
            if done == len(view) or not n:
                break
        self._at += done
        return done

    def close(self) -> None:
        self._file.close()
        super().close()


def _sniff(path: Path) -> str | None:
    """What a file that ffmpeg refused looks like, when it is plainly something else."""
    with path.open("rb") as f:
        head = f.read(1024)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"ffconcat", b"#extm3u", b"v=0")):
        return "a playlist that names other files, not a media file; give the media itself"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:300]:
        return "a web page (HTML), not a media file; was it an error page saved by a download?"
    if head.startswith(b"%PDF"):
        return "a PDF document, not a media file"
    if head.startswith((b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "an archive (zip, gzip, 7z or rar), not a media file; unpack it first"
    return None


def _words(e: Exception | None) -> str:
    """ffmpeg's reason for a failure to read or decode, in parentheses, where it tells a
    person something; nothing where it is a decoder's own error number read as a system
    error (SBC's bitpool check comes out as 'Interrupted system call') or a number with
    no name ('Error number -50531338 occurred')."""
    if e is None:
        return ""
    codec = str(getattr(e, "filename", "") or "").startswith("avcodec_")
    meaningful = (av.error.InvalidDataError, av.error.PatchWelcomeError, av.error.MemoryError)
    if codec and not isinstance(e, meaningful):
        return ""
    return f" ({_reason(e)})"


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def probe(path: str | Path) -> MediaInfo:
    """Read the container header; raise a MediaError subclass if it has no usable audio."""
    path = Path(path)
    with _open(path) as container:
        return _info(path, container)


def _info(path: Path, container: av.container.InputContainer) -> MediaInfo:
    if not container.streams.audio:
        fmt = container.format.name
        if fmt.endswith("_pipe") or fmt == "image2":  # ffmpeg's demuxers for still images
            kind = f"an image ({fmt.removesuffix('_pipe')}), not audio or video"
        elif container.streams.video:
            kind = "a video with no audio stream"
        else:
            kind = "no audio stream"
        raise NoAudioStreamError(f"{path}: {kind}; nothing to transcribe")
    stream = audio_track(container)
    ctx = stream.codec_context
    if ctx is None:
        raise MediaError(f"{path}: its audio is in a codec this service cannot decode")
    rate = ctx.sample_rate or 0
    if rate > _MAX_RATE or 0 < rate < _MIN_RATE:
        raise NotMediaError(f"{path}: the audio header is damaged: it claims {rate} Hz sampling")
    if ctx.channels == 0 and _declares_channels(container.format.name):
        raise NotMediaError(f"{path}: the audio header is damaged: it claims 0 channels")
    if ctx.channels > _MAX_CHANNELS:
        raise MediaError(
            f"{path}: the audio has {ctx.channels} channels, more than the {_MAX_CHANNELS}"
            " this service can mix or split; put the channels that carry speech in a file"
            " of their own first"
        )
    fmt = container.format.name
    duration: float | None = None
    exact = fmt in _EXACT_DURATION
    start = first = 0.0
    if stream.start_time is not None and stream.time_base is not None:
        first = float(stream.start_time * stream.time_base)
        start = first
        if container.format.flags & _TS_DISCONT and container.start_time is not None:
            start -= container.start_time / av.time_base  # time since the file's first packet
        start = max(0.0, start)
    # A Matroska track has no duration of its own: where ffmpeg gives one, it copied the
    # file's (sound that starts after its probe window), which the track's tag bounds.
    matroska = "matroska" in fmt
    if stream.duration is not None and stream.time_base is not None and not matroska:
        duration = float(stream.duration * stream.time_base)
        if fmt == "ogg" and 0 < first < duration:
            duration -= first  # ffmpeg gives the last granule: the end time, not the length
        if fmt == "ogg" and ctx.name == "opus" and ctx.delay > 0:
            # The granules count Opus's pre-skip (RFC 7845), which is never played: up to
            # 1.4 s that a short file would otherwise be "missing".
            duration = max(0.0, duration - ctx.delay / 48000)
    elif container.duration is not None:
        duration = container.duration / av.time_base
        if matroska:
            # Matroska's Duration runs from time 0, not from the first sample, and covers
            # every track; the track's own DURATION tag (its length or its end time, by
            # the muxer) bounds this one.
            tag = _clock_s(stream.metadata.get("DURATION"))
            if first > 0 and container.metadata.get("ENCODER", "").startswith("Lavf"):
                tag -= first  # ffmpeg's muxer writes the track's end time, not its length
            duration = max(0.0, min(duration - start, tag))
            exact = tag < float("inf") or len(container.streams) == 1
    if fmt == "caf" and ctx.name.startswith("pcm_") and stream.frames > 0 and rate > 0:
        # Its data chunk's size in sample frames; ffmpeg's own duration is a bitrate
        # estimate over the whole file, which chunks or zeros after the data inflate.
        duration = stream.frames / rate
    if fmt == "wav":
        check_wav_size(path)
        if (overflow := wav_overflow_s(path)) is not None:
            duration = (duration or 0.0) + overflow  # _open reads it too
    if fmt == "mp3" and duration is not None:
        counted = mp3_length(path, ctx.sample_rate or 0)
        # Exact only where ffmpeg took its duration from that count too: it falls back
        # to the bitrate for a file that is longer than its header says (concatenated).
        exact = counted is not None and abs(counted - duration) < max(0.5, 0.02 * duration)
    return MediaInfo(
        path=path,
        format_name=fmt,
        codec=ctx.name,
        duration=duration,
        sample_rate=ctx.sample_rate or 0,
        channels=ctx.channels or 0,
        has_video=bool(container.streams.video),
        start_offset=start,
        exact=exact,
        tracks=len(container.streams.audio),
        track=list(container.streams.audio).index(stream),
        track_language=_language_tag(stream),
    )


def audio_track(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    """The audio stream to transcribe: the one marked as the default track (a film's
    main language, a recording's main mix), or the first. Players start with it too."""
    tracks = container.streams.audio
    return next((t for t in tracks if t.disposition & av.stream.Disposition.default), tracks[0])


def _language_tag(stream: av.audio.stream.AudioStream) -> str | None:
    tag = (stream.language or stream.metadata.get("language") or "").strip()
    return tag if tag and tag.lower() not in ("und", "unk", "mis", "zxx") else None


def _other_tracks(info: MediaInfo) -> Notice:
    language = f" ({info.track_language})" if info.track_language else ""
    return Notice(
        NoticeCode.other_tracks,
        f"the file has {info.tracks} audio tracks; track {info.track + 1}{language} was"
        " transcribed (the default one, or the first). To transcribe another, extract it:"
        f" ffmpeg -i FILE -map 0:a:N -c copy track.mka (N from 0)",
        {"tracks": info.tracks, "track": info.track + 1, "language": language},
    )


def _declares_channels(format_name: str) -> bool:
    """Whether the container's header states the channel count (a raw stream's decoder
    learns it only from the first packet, so 0 there means "not yet known")."""
    return format_name in _EXACT_DURATION


def _clock_s(value: str | None) -> float:
    """Seconds in an "HH:MM:SS.fraction" tag; infinity when there is none."""
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d*)?)", (value or "").strip())
    if m is None:
        return float("inf")
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def stream_audio(
    path: str | Path,
    channel: int | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
    clip: Clip | None = None,
    notices: list[Notice] | None = None,
) -> Iterator[np.ndarray]:
    """Yield float32 chunks of 16 kHz audio: mixed to mono, or only `channel` (0-based),
    and only the part in `clip` when one is given (then decoding stops at its end).
    What the reader of its transcript should know about the audio (damage that was
    skipped, a channel taken alone) is added to `notices`.

    Raises TruncatedMediaError at the end when the stream stops well short of
    the duration the container declares, breaks off with a read error, or too
    many of its packets cannot be decoded; OptionError when the audio ends before
    the clip starts.
    """
    if clip is None or clip.whole:
        for _, chunk in _stream(Path(path), channel, chunk_seconds, notices=notices):
            yield chunk
        return
    # Far into a file, seek to shortly before the clip instead of decoding up to it.
    seek = clip.start - _PREROLL_S if clip.start >= _SEEK_MIN_S else 0.0
    chunks = _stream(Path(path), channel, chunk_seconds, seek, notices)
    first = round(clip.start * SAMPLE_RATE)
    stop = None if clip.end is None else round(clip.end * SAMPLE_RATE)
    at = 0  # the stream's position after the chunks seen so far
    try:
        for position, chunk in chunks:
            a = max(first - position, 0)
            b = len(chunk) if stop is None else min(stop - position, len(chunk))
            at = position + len(chunk)
            if b > a:
                yield chunk[a:b]
            if stop is not None and at >= stop:
                return  # the rest of the file is not decoded
    finally:
        chunks.close()
    if at <= first:
        raise OptionError(
            f"{path}: the clip starts at {clip.start:g} s, but the audio ends at"
            f" {at / SAMPLE_RATE:.1f} s"
        )


def _stream(
    path: Path,
    channel: int | None,
    chunk_seconds: float,
    seek_s: float = 0.0,
    notices: list[Notice] | None = None,
) -> Generator[tuple[int, np.ndarray]]:
    """The chunks of `stream_audio`, each with its position (samples) in the stream;
    with `seek_s`, from a little before that time where the container can seek."""
    said = notices if notices is not None else []
    container = _open(path)
    with container:
        info = _info(path, container)
        stream = audio_track(container)
        stream.thread_type = "AUTO"  # type: ignore[attr-defined]
        if channel is not None and channel >= max(1, info.channels):
            raise NoAudioStreamError(f"{path}: has no channel {channel + 1}")
        if channel is None and info.channels >= 2:
            stat = path.stat()
            channel = _scan_channels(path, stat.st_size, stat.st_mtime_ns)[0]
            if channel is not None:
                said.append(_alone(channel))
        if info.tracks > 1:
            said.append(_other_tracks(info))
        out = Chunks(int(chunk_seconds * SAMPLE_RATE))
        mixer = Mixer(channel)
        clock = Clock(stream, info.format_name, info.duration)
        good = bad = 0
        heard = False  # a packet of data decoded
        codec = stream.codec_context.codec.long_name or info.codec  # "SBC (low-...)"
        first_bad: float | None = None  # seconds decoded when the first packet failed
        streak, streak_at = 0, 0.0  # packets failed since the last that decoded, from when
        gave_up = False
        run_frames = run_samples = 0  # the current run of frames, for _MIN_FRAME_SAMPLES
        error: Exception | None = None
        changed_at: float | None = None  # where the stream changed to a format not followed
        sought = seek_s > 0 and _seek(container, stream, info, seek_s)
        tags: list[tuple[int, int]] | None = None  # an mp3's ID3 tags, read at a bad packet
        try:
            try:
                for packet in _demux(container, stream, path):
                    if tags and _inside(packet.pos, tags):
                        continue  # a tag where mp3 files were joined: not audio
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as e:  # a damaged packet: skip it, as players do
                        if tags is None and info.format_name == "mp3":
                            tags = id3_tags_inside(path)
                            if _inside(packet.pos, tags):
                                continue
                        bad, error = bad + 1, e
                        if first_bad is None:
                            first_bad = out.samples / SAMPLE_RATE
                        if streak == 0:
                            streak_at = out.samples / SAMPLE_RATE
                        streak += 1
                        if bad >= _BAD_PACKETS and bad > good:
                            gave_up = True  # the rest of the file is not read
                            break
                        continue
                    good += 1
                    heard = heard or packet.size > 0  # not only the final, empty packet
                    if packet.size:  # not the final, empty packet
                        streak = 0
                    for frame in frames:
                        run_frames, run_samples = run_frames + 1, run_samples + frame.samples
                        if run_frames == _FRAME_RUN:
                            _check_packing(path, run_samples / run_frames)
                            run_frames = run_samples = 0
                        if sought:  # the first frame after the seek says where the stream is
                            sought = False
                            out.skip_to(_position(frame, stream, seek_s))
                        gap = clock.gap(frame, out.samples)
                        if gap:
                            out.add(mixer.flush())
                            out.silence(gap)
                        for piece in pieces(frame):  # a huge frame, a piece at a time
                            out.add(mixer.convert(piece))
                            yield from out.placed(out.full())
            except av.error.PatchWelcomeError as e:  # Ogg: the stream changes format midway
                if out.samples == 0 or info.format_name != "ogg":
                    raise
                changed_at = out.samples / SAMPLE_RATE
                said.append(_format_change(changed_at, e))
            out.add(mixer.flush())
        except av.FFmpegError as e:
            seconds = out.samples / SAMPLE_RATE
            if seconds == 0:
                raise NotMediaError(
                    f"{path}: the {codec} audio could not be decoded{_words(e)};"
                    " the file may be damaged"
                ) from e
            raise TruncatedMediaError(
                f"{path}: file is damaged or truncated; decoding the {codec} audio"
                f" broke off at {seconds:.1f} s{_words(e)}"
            ) from e
        else:
            if out.samples == 0 and error is not None:
                which = f"the first {bad} of its packets" if gave_up else f"its {bad} packets"
                raise NotMediaError(
                    f"{path}: the {codec} audio could not be decoded: {which} all"
                    f" failed{_words(error)}; the file may be damaged"
                )
            if bad > max(1, (good + bad) // 10):
                if streak > bad // 2:  # mostly one run, to the end: not this codec's audio
                    raise TruncatedMediaError(
                        f"{path}: file is damaged: the {codec} audio could not be"
                        f" decoded from {streak_at:.1f} s on ({streak} packets in a row failed,"
                        f" {'where reading stopped' if gave_up else 'to the end'})"
                        f"{_words(error)}; the file is damaged there, or a recording in"
                        " another format was joined on there"
                    )
                raise TruncatedMediaError(
                    f"{path}: file is damaged: {bad} of {good + bad} packets of its {codec}"
                    f" audio could not be decoded, the first at {first_bad or 0.0:.1f} s"
                    f"{_words(error)}"
                )
            yield from out.placed(out.rest())
            if info.format_name == "wav" and (joined := joined_wav(path)) is not None:
                said.append(joined)
            if info.format_name.startswith("mov,mp4") and (joined := joined_mp4(path)):
                said.append(joined)
            if info.format_name == "ogg" and changed_at is None:
                cut = ogg_cut_short(path, out.samples / SAMPLE_RATE)
                said.extend([cut] if cut is not None else [])
            if "matroska" in info.format_name and info.duration is None:
                # Written as it was recorded; with a duration, a cut is refused instead.
                cut = matroska_cut_short(path, out.samples / SAMPLE_RATE)
                said.extend([cut] if cut is not None else [])
            if out.samples == 0 and not heard:
                # No packet at all. One that decodes to nothing is a recording too short
                # to outlast its codec's start-up delay (Opus's pre-skip, an mp3 encoder's
                # padding): an empty transcript, as a WAV of one sample gives.
                raise EmptyFileError(f"{path}: the audio stream holds no sound (0 samples)")
            # Packets skipped as damaged are not missing from the end: allow for them.
            skipped = out.samples / SAMPLE_RATE / max(good, 1) * bad
            if changed_at is None:  # else the rest is unread, and said to be
                _check_complete(info, out.samples / SAMPLE_RATE, skipped)
        finally:  # also when a clip ends the decoding early
            said.extend(_damage(good, bad, clock))


def _demux(
    container: av.container.InputContainer, stream: av.audio.AudioStream, path: Path
) -> Iterator[av.Packet[av.audio.AudioStream]]:
    """The packets of `stream`. A demuxer that breaks off at zeros filling the end of the
    file (space a recorder preallocated and never filled, after the last frame) has read
    all the audio there is: the stream ends there, its decoder flushed, as at the end."""
    packets = container.demux(stream)
    end = 0  # the furthest byte of the packets read so far
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            data = data_end(path)
            if data is None or data == path.stat().st_size or data > end + _PACKET_SPAN:
                raise
            log.info("%s: the file ends in %d zero bytes", path, path.stat().st_size - data)
            flush = av.Packet()  # empty: decoding it flushes the decoder
            flush.stream = stream
            yield flush  # type: ignore[misc]
            return
        if packet.pos is not None and packet.pos >= 0:
            end = max(end, packet.pos + packet.size)
        yield packet


def _inside(pos: int | None, ranges: list[tuple[int, int]]) -> bool:
    return pos is not None and any(start <= pos < end for start, end in ranges)


def _check_packing(path: Path, samples_per_frame: float) -> None:
    if samples_per_frame < _MIN_FRAME_SAMPLES:
        raise MediaError(
            f"{path}: the audio is cut into frames of {samples_per_frame:.1f} samples on"
            f" average ({_FRAME_RUN} in a row), so decoding it would take longer than"
            " playing it; re-encode it, e.g. ffmpeg -i IN -vn -c:a flac OUT.flac"
        )


def _alone(channel: int) -> Notice:
    return Notice(
        NoticeCode.channel_alone,
        f"the channels cancel out when mixed to mono (one is the other inverted), so"
        f" channel {channel + 1} was transcribed alone",
        {"channel": channel + 1},
    )


def _damage(good: int, bad: int, clock: Clock) -> list[Notice]:
    """Notices for damage that decoding got past: skipped packets, jumps in time."""
    said = []
    if bad:
        said.append(
            Notice(
                NoticeCode.damaged_audio,
                f"{bad} of {good + bad} audio packets were damaged and skipped;"
                " words there may be missing",
                {"skipped": bad, "packets": good + bad},
            )
        )
    if clock.gaps:
        seconds = round(clock.filled / SAMPLE_RATE, 1)
        said.append(
            Notice(
                NoticeCode.timestamp_gaps,
                f"the audio's timestamps jump {clock.gaps} time(s), {seconds:g} s in all;"
                " those stretches were kept as silence so that later times stay right",
                {"gaps": clock.gaps, "seconds": seconds},
            )
        )
    return said


def _seek(
    container: av.container.InputContainer,
    stream: av.audio.AudioStream,
    info: MediaInfo,
    seconds: float,
) -> bool:
    """Seek `stream` to at most `seconds` into it; False where that cannot be trusted
    (the container does not seek by time, or the seek failed: then decode from 0)."""
    if info.format_name not in _SEEKABLE or not stream.time_base:
        return False
    start = stream.start_time or 0  # WAV and AIFF state none: they start at 0
    try:
        container.seek(start + int(seconds / stream.time_base), stream=stream, backward=True)
    except (av.FFmpegError, ValueError):
        container.seek(start, stream=stream, backward=True)
        return False
    return True


def _position(frame: av.AudioFrame, stream: av.audio.AudioStream, sought: float) -> int:
    """Samples (at 16 kHz) from the stream's start to where `frame`, the first after a
    seek to `sought` seconds, begins (at the seek's target if the frame has no time)."""
    start, base = stream.start_time or 0, stream.time_base
    if frame.pts is None or frame.time_base is None or base is None:
        return round(sought * SAMPLE_RATE)
    seconds = float(frame.pts * frame.time_base) - float(start * base)
    return max(0, round(seconds * SAMPLE_RATE))


def one_sound_on_every_channel(path: Path) -> bool:
    """Whether the channels of the file's audio all carry the same sound (see SameSound):
    a file that `--channels split` should transcribe once, not channel by channel."""
    stat = path.stat()
    return _scan_channels(path, stat.st_size, stat.st_mtime_ns)[1]


@functools.lru_cache(maxsize=64)
def _scan_channels(path: Path, size: int, mtime_ns: int) -> tuple[int | None, bool]:
    """What the start of a stream says of its channels: the channel to take instead of
    the mix, and whether they all carry one sound. Read in a pass of its own, once per
    file (`size` and `mtime_ns` tell a changed file): transcription, diarization and
    language detection each stream the same file."""
    check = Cancellation()
    sameness = SameSound()
    with _open(path) as container:
        stream = audio_track(container)
        packed = av.AudioResampler(format="flt")  # same rate and layout, as float
        seen = 0.0
        frames = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frames += 1
                    if frames == _FRAME_RUN:
                        _check_packing(path, seen * frame.sample_rate / frames)
                    n = len(frame.layout.channels)
                    for block in (b for p in pieces(frame) for b in packed.resample(p)):
                        each: np.ndarray = block.to_ndarray().reshape(-1, n)
                        if not np.isfinite(each).all():
                            # Silence, as Chunks makes them: one NaN or infinity (a
                            # damaged float file) would make every sum here NaN.
                            each = np.nan_to_num(each, nan=0.0, posinf=0.0, neginf=0.0)
                        # The mean stands in for the mix: the same up to a gain, for stereo.
                        check.feed(each.mean(axis=1), each, frame.sample_rate)
                        sameness.feed(each, frame.sample_rate)
                    seen += frame.samples / frame.sample_rate
                if (check.settled and sameness.settled) or seen >= _CANCEL_SCAN_S:
                    break
        except (av.FFmpegError, ValueError):  # damage is the main pass's to report
            pass
    pick = check.channel()
    if pick is not None:
        log.info(
            "%s: its channels cancel out when mixed to mono (one is the other inverted);"
            " transcribing channel %d alone",
            path,
            pick + 1,
        )
    return pick, sameness.same()


def _format_change(at: float, error: Exception) -> Notice:
    """What a stream that changes format midway (Ogg streams chained with another rate
    or channel count: `cat a.ogg b.ogg`, a radio dump) leaves unread."""
    return Notice(
        NoticeCode.format_change,
        f"the audio changes format at {at:.1f} s (another recording joined on, with"
        f" another sample rate or channel count), which the decoder cannot follow"
        f" ({_reason(error)}); the rest of the file was not transcribed: send it as a"
        " file of its own",
        {"at": round(at, 1)},
    )


def _check_complete(info: MediaInfo, seconds: float, skipped_s: float = 0.0) -> None:
    """Raise when far less audio came out than the header promises, beyond `skipped_s`
    (an estimate of what packets skipped as damaged held)."""
    if info.duration is None or not info.exact:
        return
    if info.duration - seconds - skipped_s > max(1.0, 0.05 * info.duration):
        raise TruncatedMediaError(
            f"{info.path}: file is truncated: the header promises {info.duration:.1f} s"
            f" of audio but only {seconds:.1f} s could be decoded"
        )
