"""Baseline: plain faster-whisper `WhisperModel.transcribe`, sequential, on the same model."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main() -> None:
    from faster_whisper import WhisperModel

    model_dir, audio, out, lang, threads = sys.argv[1:6]
    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
    segments, _ = model.transcribe(audio, language=lang, beam_size=5)
    text = " ".join(s.text.strip() for s in segments)
    Path(out).write_text(text)
    print(f"{time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
