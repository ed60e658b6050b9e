"""`python -m bench.gate`: WER of greedy, gated and full-beam decoding on the dev set.

Runs the pipeline in this process on every dev clip of `../shared/eval/asr.jsonl`
(Russian and English, each clip on its own, language given) and on the bench's
6-minute Russian file, three ways: greedy (beam width 1), gated (greedy first, the
beam only for the windows the gate doubts; the default) and full beam
(`TRANSCRIBER_DECODING=beam`). Prints corpus WER per set and, for the gated run, the
share of windows the gate sent to the beam, counted at the model's `generate`.
`--word-probability 0.2,0.3` runs the gated mode once per word threshold (the
gate's one threshold that is not Whisper's own), to choose it on the dev set.
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench.run import EVAL, GAP_S, OUT, Clips
from transcriber.config import Settings
from transcriber.domain import TranscriptionOptions
from transcriber.engines import gate
from transcriber.evaluation.wer import corpus_wer
from transcriber.pipeline import Pipeline

MODES = {"greedy": ("gated", 1), "gated": ("gated", 5), "beam": ("beam", 5)}


class BeamCounter:
    """The CTranslate2 model, counting the windows decoded at each beam width."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.windows: Counter[int] = Counter()
        self.lock = threading.Lock()

    def generate(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.windows[kwargs.get("beam_size", 5)] += features.shape[0]
        return self.inner.generate(features, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def sets(clips: Clips, rows: list[dict[str, Any]]) -> dict[str, list[tuple[Path, str, str]]]:
    bench = OUT / "ru_6min.wav"
    reference = clips.write(bench, clips.rows, [GAP_S] * len(clips.rows))
    return {
        "ru clips": [(EVAL / r["path"], r["text"], "ru") for r in rows if r["lang"] == "ru"],
        "en clips": [(EVAL / r["path"], r["text"], "en") for r in rows if r["lang"] == "en"],
        "ru_6min": [(bench, reference, "ru")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="greedy,gated,beam", help="comma-separated")
    parser.add_argument("--word-probability", default=str(gate.WORD_PROBABILITY),
                        help="comma-separated word thresholds for the gated mode")  # fmt: skip
    args = parser.parse_args()
    import json

    OUT.mkdir(parents=True, exist_ok=True)
    clips = Clips.load()
    rows = [json.loads(x) for x in (EVAL / "asr.jsonl").read_text().splitlines() if x.strip()]
    table = sets(clips, rows)
    runs = [
        (f"gated@{p}" if mode == "gated" else mode, float(p))
        for mode in args.modes.split(",")
        for p in (args.word_probability.split(",") if mode == "gated" else ["0"])
    ]
    print(f"{'mode':<10} {'set':<10} {'WER':>7} {'windows':>8} {'to beam':>8}")
    for mode, threshold in runs:
        decoding, beam = MODES[mode.split("@")[0]]
        gate.WORD_PROBABILITY = threshold
        pipeline = Pipeline(Settings(decoding=decoding))  # type: ignore[call-arg]
        with pipeline.engines.use() as engine:  # held: the same engine for every run
            counter = BeamCounter(engine.model.model)  # type: ignore[attr-defined]
            engine.model.model = counter  # type: ignore[attr-defined]
            for name, items in table.items():
                counter.windows.clear()
                pairs = []
                for path, reference, lang in items:
                    t = pipeline.run(path, TranscriptionOptions(language=lang, beam_size=beam))
                    pairs.append((reference, t.text))
                first = counter.windows[1] if decoding == "gated" and beam > 1 else 0
                share = f"{counter.windows[beam] / first:.0%}" if first else "-"
                total = first or counter.windows[beam]
                wer = corpus_wer(pairs, items[0][2])
                print(f"{mode:<10} {name:<10} {wer:7.2%} {total:8d} {share:>8}", flush=True)


if __name__ == "__main__":
    main()
