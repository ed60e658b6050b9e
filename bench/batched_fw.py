"""Peer baseline: faster-whisper's `BatchedInferencePipeline`, as its callers run it.

speaches and whisper-asr-webservice style services call
`BatchedInferencePipeline(model).transcribe(audio, ...)` with the method's own
defaults: batch size 8, beam 5, Silero VAD chunks of up to 30 s, no word timestamps.
WhisperX's command line also defaults to batch size 8. Same model files and
threads as the other systems in the bench.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BATCH_SIZE = 8  # BatchedInferencePipeline.transcribe's default, and WhisperX's CLI default


def main() -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model_dir, audio, out, lang, threads = sys.argv[1:6]
    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
    pipeline = BatchedInferencePipeline(model)
    segments, _ = pipeline.transcribe(audio, language=lang, beam_size=5, batch_size=BATCH_SIZE)
    text = " ".join(s.text.strip() for s in segments)
    Path(out).write_text(text)
    print(f"{time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
