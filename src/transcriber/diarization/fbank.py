"""Kaldi's log mel filterbank ("fbank"), the features CAM++ was trained on, in numpy.

The settings are Kaldi's defaults as 3D-Speaker calls them (80 bins, no dither): 25 ms
frames every 10 ms with no padding at the edges (`snip_edges`), the frame's DC offset
removed, pre-emphasis 0.97 (the first sample repeated before the frame), a Povey window
(a symmetric Hann window to the power 0.85), a 512-point FFT of the power spectrum,
80 triangles on Kaldi's mel scale (1127 ln(1 + f/700)) from 20 Hz to Nyquist, and the
natural log floored at float32's epsilon. Each utterance's mean is then subtracted
per bin, as 3D-Speaker does before embedding.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
N_FFT = 512
N_MELS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97
EPS = float(np.finfo(np.float32).eps)


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return np.asarray(1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0))


@functools.cache
def mel_banks() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangles, flat in mel, as Kaldi builds them."""
    low, high = _mel(LOW_HZ), _mel(SAMPLE_RATE / 2)
    delta = (high - low) / (N_MELS + 1)
    left = low + delta * np.arange(N_MELS)
    centre, right = left + delta, left + 2 * delta
    mel = _mel(SAMPLE_RATE / N_FFT * np.arange(N_FFT // 2))[None, :]
    up = (mel - left[:, None]) / (centre - left)[:, None]
    down = (right[:, None] - mel) / (right - centre)[:, None]
    banks = np.maximum(0.0, np.minimum(up, down))
    out = np.zeros((N_MELS, N_FFT // 2 + 1), np.float32)
    out[:, : N_FFT // 2] = banks  # the Nyquist bin gets no weight in Kaldi
    out.setflags(write=False)
    return out


@functools.cache
def _window() -> np.ndarray:
    n = np.arange(FRAME)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))
    return (hann**0.85).astype(np.float32)


def n_frames(n_samples: int) -> int:
    return 0 if n_samples < FRAME else 1 + (n_samples - FRAME) // SHIFT


def fbank(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) float32 log mel energies of 16 kHz audio in [-1, 1]; frame i starts at
    sample i * 160. No mean is removed here (see `normalise`)."""
    audio = np.asarray(audio, dtype=np.float32)
    n = n_frames(len(audio))
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME)[::SHIFT][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] - PREEMPHASIS * frames[:, 0]
    spec = np.fft.rfft(emphasised * _window(), n=N_FFT, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    energies = power @ mel_banks().T
    logs: np.ndarray = np.log(np.maximum(energies, EPS))
    return logs


def normalise(feats: np.ndarray) -> np.ndarray:
    """Subtract each bin's mean over the frames (3D-Speaker's `mean_nor`)."""
    centred: np.ndarray = feats - feats.mean(axis=0, keepdims=True)
    return centred.astype(np.float32)
