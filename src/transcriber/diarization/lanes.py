"""One onnxruntime model as several sessions ("lanes") that share the cores, each
running its own calls at the same time.

Both speaker models are made of many small operations (an LSTM's steps, CAM++'s
hundred-odd thin convolutions). Two threads that share each operation spend part of
it waiting for each other; two sessions of one thread each, working on different
calls, do not. Measured on the 2-core development machine: a segmentation batch of
8 chunks took 0.183 s on one two-thread session and 0.156 s as two halves on two
one-thread sessions; CAM++ on 16 × 4 s took 0.55 s against 0.52 s
(docs/diarization.md). The same reasoning gave the transcription its two model
copies (engines/parallel.py).

A lane runs the jobs it takes one after another; the caller's thread is the first
lane, so nothing waits on a pool that is busy elsewhere.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from transcriber.config import available_cores

LANES = 2  # sessions per model, where there are at least as many cores


def lane_layout(cores: int, lanes: int = LANES) -> tuple[int, int]:
    """(sessions, threads per session) for a machine with `cores` cores."""
    n = max(1, min(lanes, cores))
    return n, max(1, cores // n)


Inputs = Mapping[str, np.ndarray]


class Lanes:
    """Sessions of one ONNX model (a path or the serialised bytes); `run` and
    `run_all` return each call's first output."""

    def __init__(self, model: str | bytes, lanes: int | None = None) -> None:
        import onnxruntime as ort

        n, threads = lane_layout(available_cores(), LANES if lanes is None else lanes)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # No arena of its own per session: each would keep its largest call's buffers
        # (two lanes of CAM++ took the diarized run's peak from 909 to 1042 MB). The
        # process heap (runtime.tune) reuses freed blocks across sessions, and was no
        # slower here.
        opts.enable_cpu_mem_arena = False
        # A worker that waits sleeps instead of spinning on the core another one needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = [
            ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]) for _ in range(n)
        ]
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def _helpers(self) -> ThreadPoolExecutor:
        """The threads of the lanes after the first, started on first use (and again in
        a forked child, where the parent's threads do not exist)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(len(self.sessions) - 1, thread_name_prefix="onnx-lane")
            self._pool_pid = os.getpid()
        return self._pool

    def run(self, inputs: Inputs) -> np.ndarray:
        """One call whose inputs are all batched on their first axis: the batch is
        split between the lanes and the outputs joined back in order."""
        rows = len(next(iter(inputs.values())))
        n = max(1, min(len(self.sessions), rows))
        bounds = np.linspace(0, rows, n + 1).round().astype(int)
        parts = [{k: v[a:b] for k, v in inputs.items()} for a, b in itertools.pairwise(bounds)]
        outs = self.run_all(parts)
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def run_all(self, calls: Sequence[Inputs]) -> list[np.ndarray]:
        """Independent calls, shared out between the lanes (the largest first, each lane
        taking the next when it is free); the outputs in the calls' order."""
        order = sorted(range(len(calls)), key=lambda i: -_size(calls[i]))
        out: list[np.ndarray | None] = [None] * len(calls)
        lock = threading.Lock()

        def lane(session: Any) -> None:
            while True:
                with lock:
                    if not order:
                        return
                    i = order.pop(0)
                (first, *_) = session.run(None, _contiguous(calls[i]))
                out[i] = np.asarray(first)

        helpers: list[Future[None]] = []
        if len(self.sessions) > 1 and len(calls) > 1:
            pool = self._helpers()
            helpers = [pool.submit(lane, s) for s in self.sessions[1 : len(calls)]]
        try:
            lane(self.sessions[0])
        finally:
            for f in helpers:
                f.result()  # a lane's error is the caller's
        done = [o for o in out if o is not None]
        assert len(done) == len(calls)  # every lane ran to the end or raised
        return done


def _size(call: Inputs) -> int:
    return sum(int(v.size) for v in call.values())


def _contiguous(call: Inputs) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in call.items()}
