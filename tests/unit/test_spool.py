"""The decoded stream kept on disk for the speaker pass reads back as it was written."""

from __future__ import annotations

import numpy as np

from transcriber.media.spool import PcmSpool


def test_the_spool_reads_back_what_was_written_in_any_chunking() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.uniform(-1, 1, n).astype(np.float32) for n in (16000, 7, 48000, 1)]
    parts.append(np.array([1.5, -1.5], np.float32))  # past full scale: clipped, not wrapped
    spool = PcmSpool()
    for part in parts:
        spool.write(part)
    written = np.clip(np.concatenate(parts), -1, 1)
    assert spool.samples == len(written)
    for seconds in (30.0, 0.25):
        read = list(spool.chunks(seconds))
        assert all(len(c) <= seconds * 16000 for c in read)
        back = np.concatenate(read)
        assert back.dtype == np.float32 and len(back) == len(written)
        assert np.abs(back - written).max() <= 1 / 32768 + 1e-7  # 16-bit PCM
    next(spool.chunks(0.25))  # a reader that stops early
    spool.write(np.zeros(10, np.float32))  # still goes on at the end
    assert len(np.concatenate(list(spool.chunks()))) == len(written) + 10
    spool.close()
