"""CAM++ speaker embeddings (3D-Speaker, 192-dim "zh_en common advanced"), run as an
ONNX graph that this module builds from the torch state dict.

The network (Wang et al., "CAM++: A Fast and Efficient Network for Speaker Verification
Using Context-Aware Masking", 2023):

- a 2-D convolutional front end (FCM): a 3×3 conv, two stages of two residual blocks
  (the first of each halves the frequency axis), a 3×3 conv that halves it again; its
  32 channels × 10 bins become 320 channels of a 1-D sequence;
- a TDNN layer (kernel 5, stride 2: 50 frames a second from here on);
- three densely connected blocks of 12, 24 and 16 layers (growth 32, dilation 1, 2, 2),
  each layer BN-ReLU-1×1 conv to 128, BN-ReLU, then a context-aware masking layer: a
  kernel-3 conv whose output is scaled by a sigmoid gate computed from the mean of the
  whole input plus the mean of its 100-frame (2 s) segment; a transition layer halves
  the channels after each block;
- BN-ReLU, statistics pooling (mean and unbiased standard deviation over time), and a
  1×1 dense layer to 192 with a BatchNorm without affine terms.

The pooling here takes per-frame weights, as pyannote does for its embedding models:
one pass over a chunk gives one embedding per weight row (one per local speaker), and
all-ones weights give exactly the reference embedding. BatchNorms that follow a
convolution are folded into it; the others become a multiply and an add.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transcriber.diarization.lanes import Lanes

EMBEDDING = 192
BN_EPS = 1e-5
SEGMENT = 100  # frames (after the stride-2 TDNN) of the masking layers' local context
BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation) of the three dense blocks
GRAPH_VERSION = 1  # bump when the graph built here changes: cached builds are keyed by it


def trunk_frames(n_frames: int) -> int:
    """Frames after the stride-2 TDNN layer for `n_frames` fbank frames."""
    return (n_frames + 1) // 2


class _Graph:
    """A small ONNX graph writer: initialisers from numpy, nodes with generated names."""

    def __init__(self) -> None:
        import onnx.helper  # noqa: F401  (fail here, with the import, if onnx is absent)

        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._ids = itertools.count()

    def name(self, stem: str) -> str:
        return f"{stem}_{next(self._ids)}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out


def _bn(state: Mapping[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNorm's inference form as (scale, shift) per channel."""
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    scale = 1.0 / np.sqrt(var.astype(np.float64) + BN_EPS)
    shift = -mean * scale
    if f"{prefix}.weight" in state:
        scale = scale * state[f"{prefix}.weight"]
        shift = shift * state[f"{prefix}.weight"] + state[f"{prefix}.bias"]
    return scale.astype(np.float32), shift.astype(np.float32)


class _Builder:
    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self.s = state
        self.g = _Graph()

    def conv_bn(self, x: str, conv: str, bn: str | None, relu: bool, **attrs: Any) -> str:
        """A bias-free convolution with the BatchNorm after it folded in."""
        w = self.s[f"{conv}.weight"].astype(np.float32)
        inputs = [x]
        if bn is not None:
            scale, shift = _bn(self.s, bn)
            w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
            inputs += [self.g.const(w, "w"), self.g.const(shift, "b")]
        else:
            inputs.append(self.g.const(w, "w"))
            if f"{conv}.bias" in self.s:
                inputs.append(self.g.const(self.s[f"{conv}.bias"].astype(np.float32), "b"))
        y = self.g.op("Conv", inputs, **attrs)
        return self.g.op("Relu", [y]) if relu else y

    def bn_relu(self, x: str, bn: str) -> str:
        """BatchNorm then ReLU on (B, C, T)."""
        scale, shift = _bn(self.s, bn)
        y = self.g.op("Mul", [x, self.g.const(scale.reshape(-1, 1), "s")])
        y = self.g.op("Add", [y, self.g.const(shift.reshape(-1, 1), "b")])
        return self.g.op("Relu", [y])

    def head(self, feats: str) -> str:
        g = self.g
        x = g.op("Transpose", [feats], perm=[0, 2, 1])
        x = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])  # (B, 1, 80, T)
        x = self.conv_bn(x, "head.conv1", "head.bn1", True, kernel_shape=[3, 3], pads=[1] * 4)
        for stage in ("layer1", "layer2"):
            for i in range(2):
                p = f"head.{stage}.{i}"
                stride = [2, 1] if i == 0 else [1, 1]
                y = self.conv_bn(
                    x, f"{p}.conv1", f"{p}.bn1", True, kernel_shape=[3, 3], pads=[1] * 4,
                    strides=stride,
                )  # fmt: skip
                y = self.conv_bn(
                    y, f"{p}.conv2", f"{p}.bn2", False, kernel_shape=[3, 3], pads=[1] * 4
                )
                if f"{p}.shortcut.0.weight" in self.s:
                    x = self.conv_bn(
                        x, f"{p}.shortcut.0", f"{p}.shortcut.1", False, kernel_shape=[1, 1],
                        strides=stride,
                    )  # fmt: skip
                x = g.op("Relu", [g.op("Add", [y, x])])
        x = self.conv_bn(
            x, "head.conv2", "head.bn2", True, kernel_shape=[3, 3], pads=[1] * 4, strides=[2, 1]
        )
        # (B, 32, 10, T) → (B, 320, T): channel-major, as torch reshapes it
        return g.op("Reshape", [x, g.const(np.array([0, 320, -1], np.int64))])

    def cam_layer(self, x: str, p: str, dilation: int, length: str) -> str:
        """One dense layer: BN-ReLU-conv1×1-BN-ReLU, then the context-aware masked conv."""
        g = self.g
        h = self.bn_relu(x, f"{p}.nonlinear1.batchnorm")
        h = self.conv_bn(h, f"{p}.linear1", f"{p}.nonlinear2.batchnorm", True, kernel_shape=[1])
        local = self.conv_bn(
            h, f"{p}.cam_layer.linear_local", None, False, kernel_shape=[3],
            dilations=[dilation], pads=[dilation, dilation],
        )  # fmt: skip
        whole = g.op("ReduceMean", [h, g.const(np.array([2], np.int64))], keepdims=1)
        segs = g.op("AveragePool", [h], kernel_shape=[SEGMENT], strides=[SEGMENT], ceil_mode=1)
        ctx = g.op("Add", [segs, whole])  # (B, 128, segments)
        ctx = self.conv_bn(ctx, f"{p}.cam_layer.linear1", None, True, kernel_shape=[1])
        gate = g.op(
            "Sigmoid", [self.conv_bn(ctx, f"{p}.cam_layer.linear2", None, False, kernel_shape=[1])]
        )
        # Each segment's gate, repeated over its 100 frames and cut to the input's length.
        gate = g.op("Unsqueeze", [gate, g.const(np.array([3], np.int64))])
        gate = g.op("Expand", [gate, g.const(np.array([1, 1, 1, SEGMENT], np.int64))])
        gate = g.op("Reshape", [gate, g.const(np.array([0, 0, -1], np.int64))])
        gate = g.op(
            "Slice",
            [gate, g.const(np.array([0], np.int64)), length, g.const(np.array([2], np.int64))],
        )
        return g.op("Mul", [local, gate])

    def trunk(self, feats: str) -> str:
        g = self.g
        x = self.conv_bn(
            self.head(feats), "xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm", True,
            kernel_shape=[5], strides=[2], pads=[2, 2],
        )  # fmt: skip
        length = g.op(
            "Slice", [g.op("Shape", [x]), *(g.const(np.array([v], np.int64)) for v in (2, 3))]
        )
        for b, (layers, dilation) in enumerate(BLOCKS, start=1):
            for i in range(1, layers + 1):
                new = self.cam_layer(x, f"xvector.block{b}.tdnnd{i}", dilation, length)
                x = g.op("Concat", [x, new], axis=1)
            p = f"xvector.transit{b}"
            x = self.bn_relu(x, f"{p}.nonlinear.batchnorm")
            x = self.conv_bn(x, f"{p}.linear", None, False, kernel_shape=[1])
        return self.bn_relu(x, "xvector.out_nonlinear.batchnorm")  # (B, 512, frames)

    def pool(self, h: str, weights: str) -> str:
        """Weighted mean and unbiased std over time, per weight row; then the dense layer."""
        g = self.g
        ht = g.op("Transpose", [h], perm=[0, 2, 1])  # (B, T, C)
        v1 = g.op("ReduceSum", [weights, g.const(np.array([2], np.int64))], keepdims=1)
        v2 = g.op(
            "ReduceSum",
            [g.op("Mul", [weights, weights]), g.const(np.array([2], np.int64))],
            keepdims=1,
        )
        mean = g.op("Div", [g.op("MatMul", [weights, ht]), v1])  # (B, S, C)
        ht2 = g.op("Transpose", [g.op("Mul", [h, h])], perm=[0, 2, 1])
        second = g.op("Div", [g.op("MatMul", [weights, ht2]), v1])
        var = g.op("Sub", [second, g.op("Mul", [mean, mean])])
        # Unbiased: scale the biased variance by v1² / (v1² - v2), which is T / (T - 1)
        # for equal weights.
        sq = g.op("Mul", [v1, v1])
        var = g.op("Mul", [var, g.op("Div", [sq, g.op("Sub", [sq, v2])])])
        std = g.op("Sqrt", [g.op("Relu", [var])])
        stats = g.op("Concat", [mean, std], axis=2)  # (B, S, 1024)
        w = self.s["xvector.dense.linear.weight"][:, :, 0].astype(np.float32)  # (192, 1024)
        scale, shift = _bn(self.s, "xvector.dense.nonlinear.batchnorm")
        emb = g.op("MatMul", [stats, g.const((w * scale[:, None]).T, "w")])
        return g.op("Add", [emb, g.const(shift, "b")])

    def model(self) -> bytes:
        from onnx import TensorProto, helper

        feats = helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["B", "T", 80])
        weights = helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["B", "S", "F"])
        out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", "S", EMBEDDING])
        emb = self.pool(self.trunk("feats"), "weights")
        self.g.nodes.append(helper.make_node("Identity", [emb], ["embedding"]))
        graph = helper.make_graph(self.g.nodes, "campplus", [feats, weights], [out], self.g.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        return bytes(model.SerializeToString())


def build_onnx(state: Mapping[str, np.ndarray]) -> bytes:
    """The serialised ONNX model: inputs `feats` (B, T, 80) mean-normalised fbank and
    `weights` (B, S, trunk_frames(T)); output `embedding` (B, S, 192), not normalised."""
    missing = [k for k in ("head.conv1.weight", "xvector.dense.linear.weight") if k not in state]
    if missing:
        raise KeyError(f"not a CAM++ state dict: {missing[0]} is missing")
    return _Builder(state).model()


class SpeakerEncoder:
    """CAM++ on onnxruntime: fbank features in, unit-length 192-dim embeddings out. Calls
    are shared out between the model's lanes (lanes.py)."""

    def __init__(self, model: bytes, lanes: int | None = None) -> None:
        self.lanes = Lanes(model, lanes)

    def pooled(self, feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(B, T, 80) normalised fbank and (B, S, trunk_frames(T)) weights → (B, S, 192)
        raw embeddings, one per weight row."""
        return self.lanes.run({"feats": feats, "weights": weights})

    def pooled_all(self, calls: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """`pooled` of independent (feats, weights) calls, run side by side on the lanes."""
        return self.lanes.run_all([{"feats": f, "weights": w} for f, w in calls])

    def embed(self, feats: np.ndarray) -> np.ndarray:
        """(B, T, 80) normalised fbank of equal length → (B, 192) unit-length embeddings."""
        ones = np.ones((len(feats), 1, trunk_frames(feats.shape[1])), np.float32)
        raw = self.pooled(feats, ones)[:, 0]
        unit: np.ndarray = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-8)
        return unit.astype(np.float32)


def load_state() -> dict[str, np.ndarray]:
    """The CAM++ state dict from the installed, checked weights file."""
    from transcriber.diarization.torch_pickle import load_state_dict
    from transcriber.errors import ModelError
    from transcriber.models.weights import CAMPPLUS, verified_path

    path = verified_path(CAMPPLUS)
    try:
        return load_state_dict(path)
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ModelError(
            f"{path}: the CAM++ weights cannot be read ({e}); reinstall them with:"
            f"\n{CAMPPLUS.install} --force-reinstall"
        ) from e


def cached_model(cache_dir: Path | None) -> bytes:
    """The ONNX model, built once per weights file and kept in `cache_dir`: importing
    `onnx` and building take about a second, reading the file a few milliseconds."""
    from transcriber.errors import ModelError
    from transcriber.models.weights import CAMPPLUS, verified_path

    verified_path(CAMPPLUS)  # a missing file fails here, with its pip line
    path = (
        cache_dir / f"campplus-{CAMPPLUS.sha256[:16]}-v{GRAPH_VERSION}.onnx" if cache_dir else None
    )
    if path is not None and path.is_file():
        return path.read_bytes()
    try:
        model = build_onnx(load_state())
    except ImportError as e:
        raise ModelError(
            f"building the CAM++ graph needs the onnx package: pip install onnx ({e})"
        ) from e
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(model)
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache only costs the build next time
    return model


_lock = threading.Lock()


@functools.cache
def _shared(cache_dir: Path | None) -> SpeakerEncoder:
    return SpeakerEncoder(cached_model(cache_dir))


def default_encoder(cache_dir: Path | None = None) -> SpeakerEncoder:
    """The encoder, built on first call and shared afterwards."""
    with _lock:
        return _shared(cache_dir)
