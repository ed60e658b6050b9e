"""resemblyzer's d-vector network (GE2E speaker encoder) run in numpy.

3-layer LSTM (40 mel bins in, 256 hidden) → Linear(256, 256) → ReLU → L2 norm, read
from the last frame's hidden state of the top layer. The weights come from the
`pretrained.pt` shipped in the PyPI package resemblyzer==0.1.4 (Apache-2.0), which is
installed without its dependencies; that package is never imported (it imports
torch): only its file is read, once, on first use.

The LSTM runs layer by layer over a whole batch of windows: each layer's input
projection is one large matrix product over every frame, and only the recurrent
product is left inside the loop over time steps.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.errors import ModelError
from transcriber.models.packs import check_weights

HIDDEN = 256
LAYERS = 3
INSTALL_HINT = "pip install --no-deps resemblyzer==0.1.4"


@dataclass(frozen=True, slots=True)
class _Layer:
    w_ih: np.ndarray  # (in, 4H), gates ordered i, f, o, g
    w_hh: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,)


@dataclass(frozen=True, slots=True)
class EncoderWeights:
    layers: tuple[_Layer, ...]
    linear_w: np.ndarray  # (H, E)
    linear_b: np.ndarray  # (E,)


WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
"""resemblyzer 0.1.4's pretrained.pt."""


def weights_path() -> Path:
    """Where resemblyzer's pretrained.pt lies, or ModelError saying how to install it."""
    spec = importlib.util.find_spec("resemblyzer")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "pretrained.pt"
        if path.is_file():
            return check_weights(path, WEIGHTS_SHA256, INSTALL_HINT)
    raise ModelError(
        "speaker diarization needs the resemblyzer speaker-embedding weights, which are not"
        f" installed. Install them (without torch) with:\n{INSTALL_HINT}"
    )


def _reorder(m: np.ndarray) -> np.ndarray:
    """PyTorch stacks the gates as i, f, g, o; put the three sigmoid gates first."""
    i, f, g, o = np.split(m, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def load_weights(path: Path) -> EncoderWeights:
    from transcriber.diarization.torch_pickle import load_state_dict

    try:
        state = load_state_dict(path)
        layers = tuple(
            _Layer(
                w_ih=np.ascontiguousarray(_reorder(state[f"lstm.weight_ih_l{k}"]).T),
                w_hh=np.ascontiguousarray(_reorder(state[f"lstm.weight_hh_l{k}"]).T),
                bias=_reorder(state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]),
            )
            for k in range(LAYERS)
        )
        return EncoderWeights(
            layers, np.ascontiguousarray(state["linear.weight"].T), state["linear.bias"].copy()
        )
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ModelError(
            f"{path}: the speaker-embedding weights cannot be read ({e}); reinstall them with:"
            f"\n{INSTALL_HINT}"
        ) from e


_lock = threading.Lock()


@functools.cache
def _cached() -> EncoderWeights:
    return load_weights(weights_path())


def default_weights() -> EncoderWeights:
    """The resemblyzer weights, loaded on first call and shared afterwards."""
    with _lock:
        return _cached()


def _layer(x: np.ndarray, layer: _Layer, keep: bool) -> np.ndarray:
    """Run one LSTM layer over time-major input (steps, batch, in); return (steps, batch, H)
    when `keep`, else only the last hidden state (1, batch, H)."""
    steps, batch, _ = x.shape
    pre = (x.reshape(steps * batch, -1) @ layer.w_ih + layer.bias).reshape(steps, batch, -1)
    h = np.zeros((batch, HIDDEN), np.float32)
    c = np.zeros((batch, HIDDEN), np.float32)
    gates = np.empty((batch, 4 * HIDDEN), np.float32)
    tmp = np.empty((batch, HIDDEN), np.float32)
    out = np.empty((steps if keep else 1, batch, HIDDEN), np.float32)
    sig, cell = gates[:, : 3 * HIDDEN], gates[:, 3 * HIDDEN :]
    i_gate, f_gate, o_gate = sig[:, :HIDDEN], sig[:, HIDDEN : 2 * HIDDEN], sig[:, 2 * HIDDEN :]
    for t in range(steps):
        np.matmul(h, layer.w_hh, out=gates)
        gates += pre[t]
        # sigmoid(x) = (1 + tanh(x / 2)) / 2, computed in place without overflow
        sig *= 0.5
        np.tanh(sig, out=sig)
        sig += 1.0
        sig *= 0.5
        np.tanh(cell, out=cell)
        c *= f_gate
        np.multiply(i_gate, cell, out=tmp)
        c += tmp
        np.tanh(c, out=tmp)
        np.multiply(o_gate, tmp, out=h)
        if keep:
            out[t] = h
    if not keep:
        out[0] = h
    return out


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """The recurrent products are small: BLAS threads cost more CPU than they save, and
    thrash when the machine is busy. Limit them to one where threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")  # type: ignore[no-any-return]


def embed(mels: np.ndarray, weights: EncoderWeights | None = None) -> np.ndarray:
    """(batch, frames, 40) mel windows → (batch, 256) unit-length d-vectors."""
    w = weights or default_weights()
    x = np.ascontiguousarray(np.asarray(mels, dtype=np.float32).transpose(1, 0, 2))
    with _one_blas_thread():
        for k, layer in enumerate(w.layers):
            x = _layer(x, layer, keep=k < len(w.layers) - 1)
    raw = np.maximum(x[-1] @ w.linear_w + w.linear_b, 0.0)
    norm = np.linalg.norm(raw, axis=1, keepdims=True)
    unit: np.ndarray = raw / np.maximum(norm, 1e-8)
    return unit.astype(np.float32)
