"""The mel spectrogram the resemblyzer d-vector model was trained on, in plain numpy.

resemblyzer calls librosa's `melspectrogram` with 16 kHz audio, a 25 ms (400-sample)
periodic Hann window and FFT, a 10 ms (160-sample) hop, centred frames with reflect
padding, the power spectrum, and 40 mel bands on the Slaney mel scale with Slaney area
normalisation (librosa's defaults). The result is a linear power mel spectrogram, not
a log one, so the input level matters. resemblyzer raises a whole utterance to -30 dBFS
RMS; we bring every embedding window to the level of speech at -30 dBFS instead, so a
voice that gets louder or quieter within a file still sounds like itself.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
# Mean mel power of speech at -30 dBFS RMS: measured on 33 speech regions of the eval set
# (median 0.0098, all between 0.008 and 0.0101).
SPEECH_LEVEL = 0.01


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_part = hz >= min_log_hz
    mel[log_part] = min_log_mel + np.log(hz[log_part] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    hz = mel * f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_part = mel >= min_log_mel
    hz[log_part] = min_log_hz * np.exp(logstep * (mel[log_part] - min_log_mel))
    return hz


@functools.cache
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters, Slaney-normalised to equal area."""
    fft_hz = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    edges_mel = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2]))[0], n_mels + 2
    )
    edges = _mel_to_hz(edges_mel)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights.astype(np.float32)


@functools.cache
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann


def normalise_level(windows: np.ndarray) -> np.ndarray:
    """(batch, frames, mels) windows, each scaled to the mean mel power of -30 dBFS speech."""
    level = windows.mean(axis=(1, 2), keepdims=True)
    scaled: np.ndarray = windows * (SPEECH_LEVEL / np.maximum(level, 1e-12))
    return scaled.astype(np.float32)


def mel_spectrogram(audio: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) float32 power mel spectrogram; frame i is centred on sample i * HOP."""
    audio = np.asarray(audio, dtype=np.float32)
    pad = N_FFT // 2
    if len(audio) > pad:
        padded = np.pad(audio, pad, mode="reflect")
    else:
        padded = np.pad(audio, pad, mode="constant")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    spec = np.fft.rfft(frames * _window(), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel: np.ndarray = power @ mel_filterbank().T
    return mel
