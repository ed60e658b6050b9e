"""Encoder-only floor: the Whisper encoder alone over the same audio, in full 30 s windows.

No transcription can be faster than encoding its audio once, so this is the floor the
bench holds video-transcriber's wall time against. The audio is cut into consecutive
30 s windows with no VAD (ceil(seconds / 30) windows, the fewest that cover it; the
VAD can only drop silence, and the bench file has little). Timed: the log-mel features
and the encoder, on the same model files, threads and model copies as the CLI (two
one-thread copies on 2 cores, one window each per call, which measured fastest).
Not timed: imports, loading the model and decoding the file. Prints the seconds.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim

    from transcriber import runtime
    from transcriber.config import Settings
    from transcriber.engines.parallel import ordered_map
    from transcriber.media import stream_audio
    from transcriber.media.frames import SAMPLE_RATE

    runtime.tune()  # as the CLI does, before ctranslate2 loads
    model_dir, audio_path = sys.argv[1:3]
    settings = Settings()
    copies = settings.replicas_count()
    model = WhisperModel(
        model_dir,
        device="cpu",
        compute_type="int8",
        cpu_threads=settings.threads_per_replica(),
        num_workers=copies,
    )
    audio = np.concatenate(list(stream_audio(audio_path)))
    size = int(30 * SAMPLE_RATE)
    windows = [audio[i : i + size] for i in range(0, len(audio), size)]
    fe = model.feature_extractor

    def encode(window: np.ndarray) -> int:
        features = pad_or_trim(fe(window)[..., :-1])[np.newaxis]
        model.encode(features)
        return 1

    model.encode(np.zeros((1, model.model.n_mels, 3000), np.float32))  # first-call set-up
    started = time.perf_counter()
    done = sum(ordered_map(encode, windows, copies))
    seconds = time.perf_counter() - started
    assert done == len(windows)
    print(f"{seconds:.3f} {len(windows)}")


if __name__ == "__main__":
    main()
