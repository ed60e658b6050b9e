"""`make bench`: the project's CLI end to end against plain faster-whisper, in one run.

Builds a ~6-minute file from the Russian dev clips and a ~60-minute file by
repeating it, runs each system in its own subprocess, and prints wall time,
real-time factor, peak RSS and WER, with ratios.

Wall times on a shared or virtual machine vary by 10-20% from run to run, so the
6-minute comparison alternates the two systems `--rounds` times and compares the
fastest run of each. `--layouts K` also scores both systems on K more 6-minute
files with the clips shuffled and the gaps varied: one file's WER depends on how
its clips happen to fall into windows. `--full` also runs plain faster-whisper
on the 60-minute file (slow: about 20 minutes on 2 cores). Last, the service phase
(`bench/service.py`, off with `--no-service`) runs both files through
`transcriber serve`: checkpoint bytes per audio hour, and `/health` latency while the
long file is transcribed and 20 uploads arrive.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import service
from transcriber.config import Settings
from transcriber.evaluation.wer import corpus_wer
from transcriber.media import stream_audio
from transcriber.models import resolve

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("TRANSCRIBER_EVAL_DIR", ROOT.parent / "shared" / "eval"))
OUT = ROOT / "bench" / "out"
RATE = 16000
GAP_S = 0.5
PLAIN = "faster-whisper (sequential)"
OURS = "video-transcriber"


@dataclass
class Result:
    system: str
    audio: str
    seconds: float
    wall: float
    peak_mb: float
    wer: float
    text: str = ""

    @property
    def rtf(self) -> float:
        return self.wall / self.seconds


@dataclass
class Clips:
    rows: list[dict[str, Any]]
    audio: dict[str, np.ndarray]

    @classmethod
    def load(cls) -> Clips:
        rows = [json.loads(x) for x in (EVAL / "asr.jsonl").read_text().splitlines() if x.strip()]
        rows = [r for r in rows if r["lang"] == "ru"]
        audio = {r["path"]: np.concatenate(list(stream_audio(EVAL / r["path"]))) for r in rows}
        return cls(rows, audio)

    def write(
        self, path: Path, rows: list[dict[str, Any]], gaps: list[float], times: int = 1
    ) -> str:
        """Join `rows` with silent `gaps` into a 16-bit wav, `times` over; return the reference."""
        parts = []
        for r, gap in zip(rows, gaps, strict=True):
            parts += [self.audio[r["path"]], np.zeros(int(gap * RATE), np.float32)]
        pcm = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            for _ in range(times):
                w.writeframes(pcm)
        return " ".join([" ".join(r["text"] for r in rows)] * times)


def seconds_of(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


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


def ours(audio: Path, reference: str, env: dict[str, str], diarize: bool = False) -> Result:
    out = OUT / ("ours_diarized" if diarize else "ours")
    cmd = [sys.executable, "-m", "transcriber", "transcribe", str(audio), "--language", "ru",
           "--format", "srt,txt,json", "--output-dir", str(out)]  # fmt: skip
    if diarize:
        cmd.append("--diarize")
    wall, peak = measure(cmd, env)
    text = (out / f"{audio.stem}.txt").read_text()
    name = f"{OURS} --diarize" if diarize else OURS
    wer = corpus_wer([(reference, text)], "ru")
    return Result(name, audio.name, seconds_of(audio), wall, peak, wer, text)


# The process settings that `transcriber.runtime.tune()` applies, as environment
# variables: `--tuned-baseline` gives them to plain faster-whisper too, to show how much
# of the speed-up is batching and how much is the runtime.
TUNED_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
}


def plain(
    audio: Path, reference: str, model: Path, env: dict[str, str], tuned: bool = False
) -> Result:
    out = OUT / f"plain_{audio.stem}.txt"
    threads = str(Settings().threads())
    cmd = [sys.executable, "-m", "bench.plain_fw", str(model), str(audio), str(out), "ru", threads]
    wall, peak = measure(cmd, {**env, **TUNED_ENV} if tuned else env)
    text = out.read_text()
    wer = corpus_wer([(reference, text)], "ru")
    name = f"{PLAIN[:-1]}, tuned)" if tuned else PLAIN
    return Result(name, audio.name, seconds_of(audio), wall, peak, wer, text)


def diarization_alone(audio: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Diarization by itself in a subprocess: its own time, peak RSS (MB), speakers."""
    cmd = [sys.executable, "-m", "bench.diarize_only", str(audio)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
    out = proc.stdout.read().decode().split() if proc.stdout else ["0", "0"]
    return float(out[0]), usage.ru_maxrss / 1024, int(out[1])


def show(r: Result) -> None:
    print(f"{r.system:<30} {r.audio:<16} {r.wall:8.1f} {r.rtf:7.3f} {r.peak_mb:8.0f} {r.wer:7.2%}",
          flush=True)  # fmt: skip


def layouts(clips: Clips, count: int, model: Path, env: dict[str, str]) -> None:
    """Both systems on `count` shuffled layouts; corpus WER over all of them."""
    pairs: dict[str, list[tuple[str, str]]] = {PLAIN: [], OURS: []}
    for seed in range(count):
        rows = clips.rows[:]
        random.Random(seed).shuffle(rows)
        rng = random.Random(1000 + seed)
        gaps = [rng.uniform(0.3, 1.5) for _ in rows]
        path = OUT / f"ru_layout{seed}.wav"
        reference = clips.write(path, rows, gaps)
        for r in (plain(path, reference, model, env), ours(path, reference, env)):
            show(r)
            pairs[r.system].append((reference, r.text))
    a, b = corpus_wer(pairs[PLAIN], "ru"), corpus_wer(pairs[OURS], "ru")
    print(f"\nWER over {count} shuffled layouts: ours {b:.2%} vs baseline {a:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also run the baseline on 60 min")
    parser.add_argument("--repeat", type=int, default=10, help="copies in the long file")
    parser.add_argument("--rounds", type=int, default=2, help="alternating 6-min runs per system")
    parser.add_argument("--layouts", type=int, default=0, help="shuffled 6-min files to score")
    parser.add_argument(
        "--no-service",
        dest="service",
        action="store_false",
        help="skip the service phase (checkpoint bytes, /health latency)",
    )
    parser.add_argument("--tuned-baseline", action="store_true",
                        help="also run plain faster-whisper with the runtime tuning")  # fmt: skip
    args = parser.parse_args()
    if not EVAL.is_dir():
        sys.exit(f"eval speech not found at {EVAL}")
    settings = Settings()
    model = resolve("base", settings.model_dir).path
    assert model is not None
    OUT.mkdir(parents=True, exist_ok=True)
    clips = Clips.load()
    gaps = [GAP_S] * len(clips.rows)
    short, long = OUT / "ru_6min.wav", OUT / f"ru_{args.repeat * 6}min.wav"
    reference = clips.write(short, clips.rows, gaps)
    long_reference = clips.write(long, clips.rows, gaps, times=args.repeat)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"inputs: {short.name} ({seconds_of(short) / 60:.1f} min), {long.name}; model {model}")
    print(f"\n{'system':<30} {'audio':<16} {'wall s':>8} {'RTF':>7} {'peak MB':>8} {'WER':>7}")
    runs: list[Result] = []
    for _ in range(args.rounds):
        for r in (plain(short, reference, model, env), ours(short, reference, env)):
            show(r)
            runs.append(r)
    if args.tuned_baseline:
        show(plain(short, reference, model, env, tuned=True))
    mine_long = ours(long, long_reference, env)
    diarized = ours(short, reference, env, diarize=True)
    show(mine_long)
    show(diarized)
    if args.full:
        show(plain(long, long_reference, model, env))
    base = min((r for r in runs if r.system == PLAIN), key=lambda r: r.wall)
    mine = min((r for r in runs if r.system == OURS), key=lambda r: r.wall)
    print(f"\nspeed-up vs sequential faster-whisper (6 min, fastest of {args.rounds} each):"
          f" {base.wall / mine.wall:.2f}x ({base.wall:.1f} s vs {mine.wall:.1f} s)")  # fmt: skip
    # Each round's pair ran back to back, so its ratio is the least touched by the
    # host's speed drifting over the minutes of the whole run.
    paired = [p.wall / o.wall for p, o in zip(runs[0::2], runs[1::2], strict=True)]
    each = ", ".join(f"{r:.2f}x" for r in paired)
    print(f"speed-up per round (pairs run back to back): {each};"
          f" median {statistics.median(paired):.2f}x")  # fmt: skip
    print(f"WER: ours {mine.wer:.2%} vs baseline {base.wer:.2%}")
    print(f"peak RSS 60 min / 6 min (ours): {mine_long.peak_mb / mine.peak_mb:.2f}x"
          f" ({mine_long.peak_mb:.0f} MB vs {mine.peak_mb:.0f} MB)")  # fmt: skip
    print(f"peak RSS ours / baseline (6 min): {mine.peak_mb / base.peak_mb:.2f}x")
    # From the diarized run's own timings: a ratio of two wall times taken minutes
    # apart would mostly measure how busy the machine was.
    meta = json.loads((OUT / "ours_diarized" / f"{short.stem}.json").read_text())["metadata"]
    spent = meta["timings"]["diarization"]
    share = spent / (meta["processing_time"] - spent)
    print(f"diarization extra time (6 min): {share:+.1%} ({spent:.1f} s of {diarized.wall:.1f} s)")
    # Diarization alone, on the 6-minute and the long file: its memory must not grow with
    # the length of the audio (chunk outputs are reduced as they arrive).
    short_d, long_d = diarization_alone(short, env), diarization_alone(long, env)
    for name, (secs, peak, found) in ((short.name, short_d), (long.name, long_d)):
        audio_s = seconds_of(short if name == short.name else long)
        print(f"diarization alone, {name}: {secs:.1f} s (RTF {secs / audio_s:.4f}),"
              f" peak RSS {peak:.0f} MB, {found} speaker(s)")  # fmt: skip
    print(f"diarization peak RSS long / 6 min: {long_d[1] / short_d[1]:.2f}x")
    if args.service:
        print(f"\nthe service: {short.name} then {long.name} through /v1/audio/transcriptions")
        service.run(short, long, {p: seconds_of(p) for p in (short, long)}, env)
    if args.layouts:
        print()
        layouts(clips, args.layouts, model, env)
    print(f"children CPU seconds: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime:.0f}")


if __name__ == "__main__":
    main()
