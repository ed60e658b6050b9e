"""`make bench`: the project's CLI end to end against plain faster-whisper, in one run.

Builds a ~6-minute file from the Russian dev clips and a ~60-minute file by
repeating it, runs each system in its own subprocess, and prints wall time,
real-time factor, peak RSS and WER, with ratios. Add `--full` to also run plain
faster-whisper on the 60-minute file (slow: about 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.config import Settings
from transcriber.evaluation.wer import corpus_wer
from transcriber.media import stream_audio
from transcriber.models import resolve

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("TRANSCRIBER_EVAL_DIR", ROOT.parent / "shared" / "eval"))
OUT = ROOT / "bench" / "out"
GAP = np.zeros(8000, np.float32)


@dataclass
class Result:
    system: str
    audio: str
    seconds: float
    wall: float
    peak_mb: float
    wer: float

    @property
    def rtf(self) -> float:
        return self.wall / self.seconds


def build_inputs(repeat: int) -> tuple[Path, Path, str, float]:
    rows = [json.loads(x) for x in (EVAL / "asr.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["lang"] == "ru"]
    OUT.mkdir(parents=True, exist_ok=True)
    short, long = OUT / "ru_6min.wav", OUT / f"ru_{repeat * 6}min.wav"
    pcm = b""
    for r in rows:
        audio = np.concatenate([*stream_audio(EVAL / r["path"]), GAP])
        pcm += (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    for path, times in ((short, 1), (long, repeat)):
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            for _ in range(times):
                w.writeframes(pcm)
    reference = " ".join(r["text"] for r in rows)
    return short, long, reference, len(pcm) / 2 / 16000


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return its wall time and peak RSS (MB) from the kernel's rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def ours(
    audio: Path, seconds: float, reference: str, repeat: int, env: dict[str, str],
    diarize: bool = False,
) -> Result:  # fmt: skip
    out = OUT / ("ours_diarized" if diarize else "ours")
    cmd = [sys.executable, "-m", "transcriber", "transcribe", str(audio), "--language", "ru",
           "--format", "srt,txt", "--output-dir", str(out)]  # fmt: skip
    if diarize:
        cmd.append("--diarize")
    wall, peak = measure(cmd, env)
    text = (out / f"{audio.stem}.txt").read_text()
    name = "video-transcriber --diarize" if diarize else "video-transcriber"
    return Result(name, audio.name, seconds, wall, peak,
                  corpus_wer([(" ".join([reference] * repeat), text)], "ru"))  # fmt: skip


def plain(
    audio: Path, seconds: float, reference: str, repeat: int, model: Path, env: dict[str, str]
) -> Result:
    out = OUT / f"plain_{audio.stem}.txt"
    threads = str(Settings().threads())
    cmd = [sys.executable, "-m", "bench.plain_fw", str(model), str(audio), str(out), "ru", threads]
    wall, peak = measure(cmd, env)
    wer = corpus_wer([(" ".join([reference] * repeat), out.read_text())], "ru")
    return Result("faster-whisper (sequential)", audio.name, seconds, wall, peak, wer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also run the baseline on 60 min")
    parser.add_argument("--repeat", type=int, default=10, help="copies in the long file")
    args = parser.parse_args()
    if not EVAL.is_dir():
        sys.exit(f"eval speech not found at {EVAL}")
    settings = Settings()
    model = resolve("base", settings.model_dir).path
    assert model is not None
    short, long, reference, seconds = build_inputs(args.repeat)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"inputs: {short.name} ({seconds / 60:.1f} min), {long.name}; model {model}")
    results = [
        plain(short, seconds, reference, 1, model, env),
        ours(short, seconds, reference, 1, env),
        ours(long, seconds * args.repeat, reference, args.repeat, env),
        ours(short, seconds, reference, 1, env, diarize=True),
    ]
    if args.full:
        results.append(plain(long, seconds * args.repeat, reference, args.repeat, model, env))
    print(f"\n{'system':<28} {'audio':<14} {'wall s':>8} {'RTF':>7} {'peak MB':>8} {'WER':>7}")
    for r in results:
        print(f"{r.system:<28} {r.audio:<14} {r.wall:8.1f} {r.rtf:7.3f} {r.peak_mb:8.0f}"
              f" {r.wer:7.2%}")  # fmt: skip
    base, mine, mine_long = results[0], results[1], results[2]
    print(f"\nspeed-up vs sequential faster-whisper (6 min): {base.wall / mine.wall:.2f}x")
    print(f"WER: ours {mine.wer:.2%} vs baseline {base.wer:.2%}")
    print(f"peak RSS 60 min / 6 min (ours): {mine_long.peak_mb / mine.peak_mb:.2f}x"
          f" ({mine_long.peak_mb:.0f} MB vs {mine.peak_mb:.0f} MB)")  # fmt: skip
    print(f"peak RSS ours / baseline (6 min): {mine.peak_mb / base.peak_mb:.2f}x")
    diarized = results[3]
    print(f"diarization extra time (6 min): {diarized.wall / mine.wall - 1:+.1%}")
    print(f"children CPU seconds: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime:.0f}")


if __name__ == "__main__":
    main()
