"""Make test media with PyAV: re-encodings of real speech, and broken files."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from transcriber.media import stream_audio


def load(path: Path) -> np.ndarray:
    return np.concatenate(list(stream_audio(path)))


def write_audio(
    path: Path,
    audio: np.ndarray,
    rate: int = 16000,
    codec: str = "pcm_s16le",
    layout: str = "mono",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode float32 audio (shape (n,) or (channels, n)) at `rate` into `path`, with the
    muxer's `options` (e.g. {"live": "1"}: WebM as a browser's MediaRecorder writes it)."""
    planar = audio if audio.ndim == 2 else audio[None, :]
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame_fmt = stream.codec_context.format.name
        step = 1024
        for i in range(0, planar.shape[1], step):
            block = np.ascontiguousarray(planar[:, i : i + step], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for f in _convert(frame, frame_fmt, layout, rate):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def raw_pcm(path: Path) -> bytes:
    """The audio of `path` as Bazarr hands it to whisper-asr-webservice: headerless
    16-bit little-endian mono at 16 kHz (what `ffmpeg -f s16le -ac 1 -ar 16000` writes)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    out = bytearray()
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for f in resampler.resample(frame):
                out += f.to_ndarray().astype("<i2").tobytes()
        for f in resampler.resample(None):
            out += f.to_ndarray().astype("<i2").tobytes()
    return bytes(out)


def _convert(frame: av.AudioFrame, fmt: str, layout: str, rate: int) -> list[av.AudioFrame]:
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    return list(resampler.resample(frame))


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    n = int(len(audio) * rate / 16000)
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(
        np.float32
    )


def write_silent_video(path: Path, seconds: float = 2.0) -> Path:
    """A video with no audio stream at all."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), (i * 10) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_video_with_late_audio(
    path: Path, audio: np.ndarray, audio_at: float, seconds: float, rate: int = 48000
) -> Path:
    """A video `seconds` long (blank frames from time 0) whose audio track (16 kHz float32
    `audio`, encoded as AAC) starts only at `audio_at` seconds, as a screen recording or
    a capture whose sound came up late."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=rate, layout="mono")
        sound.time_base = Fraction(1, rate)
        size = sound.codec_context.frame_size or 1024
        samples = resample(audio, rate)
        samples = np.pad(samples, (0, -len(samples) % size))
        frames = []
        for i in range(0, len(samples), size):
            block = np.ascontiguousarray(samples[None, i : i + size], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            frame.sample_rate = rate
            for f in _convert(frame, sound.codec_context.format.name, "mono", rate):
                f.pts, f.time_base = round(audio_at * rate) + i, Fraction(1, rate)
                frames.append(f)
        blank = np.zeros((48, 64, 3), dtype=np.uint8)
        for k in range(int(seconds * 10) + 1):
            image = av.VideoFrame.from_ndarray(blank, format="rgb24")
            image.pts, image.time_base = k, Fraction(1, 10)
            for packet in video.encode(image):
                out.mux(packet)
            while frames and (k == int(seconds * 10) or frames[0].pts / rate <= k / 10):
                for packet in sound.encode(frames.pop(0)):
                    out.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """Instrumental music at 16 kHz: a plucked melody over chords and bass, with drums.

    Synthesised, so that tests own their media: notes with harmonics and decaying
    envelopes on a steady beat, which is what makes music look like speech to a
    detector (voiced, with pitch and rhythm), without any words in it.
    """
    rng = np.random.default_rng(seed)
    sr, beat = 16000, 0.375  # 160 bpm
    n = int(seconds * sr)
    out = np.zeros(n, np.float32)
    scale = 220.0 * 2 ** (np.array([0, 2, 3, 5, 7, 8, 10, 12]) / 12)  # A minor

    def note(freq: float, start: float, length: float, gain: float, decay: float) -> None:
        i = int(start * sr)
        m = min(int(length * sr), n - i)
        if m <= 0:
            return
        t = np.arange(m) / sr
        wave = sum(np.sin(2 * np.pi * freq * k * t) / k**1.5 for k in range(1, 7))
        out[i : i + m] += (gain * np.exp(-decay * t) * wave).astype(np.float32)

    t = 0.0
    while t < seconds:
        bar = int(t / (4 * beat))
        root = scale[[0, 5, 3, 4][bar % 4]]
        if t % (4 * beat) < 1e-9:
            for interval in (1.0, 1.26, 1.5):  # the bar's chord, held
                note(root * interval, t, 4 * beat, 0.05, 0.8)
            note(root / 2, t, 4 * beat, 0.12, 1.5)  # bass
        note(float(rng.choice(scale)) * 2, t, beat, 0.08, 6.0)  # melody
        i = int(t * sr)
        hit = min(int(0.06 * sr), n - i)
        if hit > 0:  # drum: a short burst of noise on every beat
            out[i : i + hit] += rng.standard_normal(hit) * 0.15 * np.exp(-np.arange(hit) / 200)
        t += beat
    return (out / max(1e-6, float(np.abs(out).max())) * 0.6).astype(np.float32)


def write_streams(
    path: Path,
    streams: list[np.ndarray],
    rate: int = 48000,
    codec: str = "aac",
    start: float = 0.0,
    default: int | None = None,
    language: str | None = None,
) -> Path:
    """A container with one audio stream per array, each starting at `start` seconds;
    stream `default` (from 0) marked as the default track, tagged with `language`."""
    with av.open(str(path), "w") as out:
        outs = [out.add_stream(codec, rate=rate, layout="mono") for _ in streams]
        if default is not None:
            outs[default].disposition = av.stream.Disposition.default
            if language:
                outs[default].metadata["language"] = language
        offset = int(start * rate)
        step = 1024
        for i in range(0, max(len(a) for a in streams), step):
            for audio, stream in zip(streams, outs, strict=True):
                block = audio[i : i + step]
                if not len(block):
                    continue
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(block[None, :], dtype=np.float32), format="fltp",
                    layout="mono",
                )  # fmt: skip
                frame.sample_rate = rate
                frame.pts = offset + i
                frame.time_base = Fraction(1, rate)
                for f in _convert(frame, stream.codec_context.format.name, "mono", rate):
                    for packet in stream.encode(f):
                        out.mux(packet)
        for stream in outs:
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def write_hollow_wav(path: Path, rate: int = 16000) -> Path:
    """A valid 16-bit mono WAV header with no samples after it: it opens, but holds no sound."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
    return path


def write_raw_wav(
    path: Path,
    data: bytes,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    big_endian: bool = False,
    trailer: bytes = b"",
    valid_bits: int | None = None,
) -> Path:
    """A WAV written by hand, header fields as given: any rate, channel count or format tag
    (1 PCM, 3 IEEE float), with no channel mask, so channels beyond stereo have no order.
    `big_endian` writes a RIFX file (its numbers big-endian; `data` must be too), and
    `trailer` is a chunk's bytes after the data chunk (metadata, as many tools add).
    `valid_bits` writes WAVE_FORMAT_EXTENSIBLE, `tag` its subformat and `bits` the size
    each sample is stored in (24 valid bits in 32, as Windows capture writes)."""
    import struct

    o, riff = (">", b"RIFX") if big_endian else ("<", b"RIFF")
    block = channels * bits // 8
    head = 0xFFFE if valid_bits is not None else tag
    fmt = struct.pack(o + "HHIIHH", head, channels, rate, rate * block, block, bits)
    if valid_bits is not None:  # cbSize, valid bits, no channel mask, the subformat GUID
        guid = struct.pack(o + "IHH", tag, 0, 0x10) + bytes.fromhex("800000aa00389b71")
        fmt += struct.pack(o + "HHI", 22, valid_bits, 0) + guid
    pad = b"\0" * (len(data) & 1)
    path.write_bytes(
        riff + struct.pack(o + "I", 4 + 8 + len(fmt) + 8 + len(data) + len(pad) + len(trailer))
        + b"WAVE" + b"fmt " + struct.pack(o + "I", len(fmt)) + fmt
        + b"data" + struct.pack(o + "I", len(data)) + data + pad + trailer
    )  # fmt: skip
    return path


def write_float_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    """32-bit float samples stored as they are: NaN, infinities and values beyond ±1 too."""
    return write_raw_wav(path, audio.astype("<f4").tobytes(), rate=rate, bits=32, tag=3)


def write_timed(
    path: Path, blocks: list[tuple[float, np.ndarray]], codec: str = "aac", rate: int = 48000
) -> Path:
    """Mono audio blocks (16 kHz float32) stamped at the given times in seconds: a gap
    between blocks is a jump in the timestamps, a first time far from 0 a late start."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.time_base = Fraction(1, rate)
        size = stream.codec_context.frame_size or 1024
        fmt = stream.codec_context.format.name
        for at, audio in blocks:
            audio = resample(audio, rate)
            audio = np.pad(audio, (0, -len(audio) % size))
            for i in range(0, len(audio), size):
                block = np.ascontiguousarray(audio[None, i : i + size], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                frame.sample_rate = rate
                for f in _convert(frame, fmt, "mono", rate):
                    f.pts = round(at * rate) + i
                    f.time_base = Fraction(1, rate)
                    for packet in stream.encode(f):
                        out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_silence(path: Path, seconds: float, codec: str = "flac", rate: int = 8000) -> Path:
    """Long digital silence, encoded frame by frame: an hour of FLAC is well under 1 MB."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        size = stream.codec_context.frame_size or 4608
        frame = av.AudioFrame(format=stream.codec_context.format.name, layout="mono", samples=size)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        for i in range(int(seconds * rate) // size):
            frame.pts = i * size
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
