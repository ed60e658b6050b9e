"""pyannote segmentation-3.0 on onnxruntime: who is speaking in a 10 s chunk, per frame.

The model (SincNet, four bidirectional LSTM layers, linear layers) reads 10 s of 16 kHz
audio and gives, for each of its 589 frames (one every 270 samples, 16.9 ms, each seeing
991 samples), the log-probabilities of 7 "powerset" classes over up to three local
speakers: nobody, speaker 1, 2 or 3 alone, or one of the three pairs. The most likely
class of each frame decodes to three yes/no activities, two of which may be on at once
(overlapped speech). Local speakers are numbered per chunk: speaker 1 of one chunk has
nothing to do with speaker 1 of the next, which is what clustering sorts out.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from transcriber.diarization.lanes import Lanes
from transcriber.errors import ModelError
from transcriber.models.weights import SEGMENTATION, verified_path

CHUNK = 160_000  # samples: 10 s
FRAME_STEP = 270  # samples between frames
FRAME_SPAN = 991  # samples each frame sees (the receptive field)
FRAMES = 589  # frames per chunk
LOCAL_SPEAKERS = 3

# Powerset class → which local speakers are active.
POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool
)


def decode_powerset(log_probs: np.ndarray) -> np.ndarray:
    """(..., frames, 7) class scores → (..., frames, 3) bool activities."""
    out: np.ndarray = POWERSET[np.argmax(log_probs, axis=-1)]
    return out


class Segmenter:
    """The loaded model; call it on a (batch, 160000) float32 array of chunks. A batch
    is split between the model's lanes (lanes.py)."""

    def __init__(self, lanes: int | None = None) -> None:
        path = verified_path(SEGMENTATION)
        try:
            self.lanes = Lanes(str(path), lanes)
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: the segmentation model cannot be loaded ({e})") from e

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        """(batch, 589, 3) bool: which local speakers are active in each frame."""
        scores = self.lanes.run({"input": np.asarray(chunks, dtype=np.float32)[:, None, :]})
        return decode_powerset(scores)


_lock = threading.Lock()


@functools.cache
def _shared() -> Segmenter:
    return Segmenter()


def default_segmenter() -> Segmenter:
    """The model, loaded on first call and shared afterwards."""
    with _lock:
        return _shared()
