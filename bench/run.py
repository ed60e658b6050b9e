"""`make bench`: the project's CLI end to end against faster-whisper, in one run.

Builds a ~6-minute file from the Russian dev clips and a ~60-minute file by
repeating it, runs each system in its own subprocess, and prints wall time,
real-time factor, peak RSS and WER, with ratios. Two faster-whisper baselines run
on the same model: plain sequential `WhisperModel.transcribe` (bench/plain_fw.py)
and the `BatchedInferencePipeline` that WhisperX-style services run
(bench/batched_fw.py); beside them, the encoder-only floor on the same audio
(bench/encoder_floor.py).

Wall times on a shared or virtual machine vary by 10-20% from run to run, so the
6-minute comparison runs the systems back to back `--rounds` times and reports
the median of each round's ratio (and the fastest run of each). `--layouts K` also
scores ours and the sequential baseline on K more 6-minute files with the clips
shuffled and the gaps varied: one file's WER depends on how its clips happen to
fall into windows. `--full` also runs plain faster-whisper
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
from bench.batched_fw import BATCH_SIZE
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
BATCHED = "faster-whisper (batched)"
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


def ours(
    audio: Path, reference: str, env: dict[str, str], diarize: bool = False, decoding: str = ""
) -> Result:
    """The CLI; `decoding` sets TRANSCRIBER_DECODING for this run (default: the setting's)."""
    out = OUT / ("ours_diarized" if diarize else f"ours{decoding}")
    if decoding:
        env = {**env, "TRANSCRIBER_DECODING": decoding}
    cmd = [sys.executable, "-m", "transcriber", "transcribe", str(audio), "--language", "ru",
           "--format", "srt,txt,json", "--output-dir", str(out)]  # fmt: skip
    if diarize:
        cmd.append("--diarize")
    wall, peak = measure(cmd, env)
    text = (out / f"{audio.stem}.txt").read_text()
    name = f"{OURS} --diarize" if diarize else f"{OURS} ({decoding})" if decoding else OURS
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


def batched(audio: Path, reference: str, model: Path, env: dict[str, str]) -> Result:
    out = OUT / f"batched_{audio.stem}.txt"
    threads = str(Settings().threads())
    cmd = [sys.executable, "-m", "bench.batched_fw", str(model), str(audio), str(out), "ru",
           threads]  # fmt: skip
    wall, peak = measure(cmd, env)
    wer = corpus_wer([(reference, out.read_text())], "ru")
    return Result(BATCHED, audio.name, seconds_of(audio), wall, peak, wer, out.read_text())


def encoder_floor(audio: Path, model: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds the encoder alone takes over `audio` in full 30 s windows, and how many."""
    cmd = [sys.executable, "-m", "bench.encoder_floor", str(model), str(audio)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr}")
    seconds, windows = done.stdout.split()
    return float(seconds), int(windows)


def median_ratio(label: str, ratios: list[float]) -> None:
    each = ", ".join(f"{r:.2f}x" for r in ratios)
    print(f"{label}: {each}; median {statistics.median(ratios):.2f}x")


def diarization_share(audio: Path, reference: str, env: dict[str, str], runs: int) -> None:
    """Diarization's time against the rest of the same run (its own timings), over
    `runs` diarized runs: a ratio of two wall times taken minutes apart would mostly
    measure how busy the machine was, and one run's share moves by a point or two."""
    shares = []
    for _ in range(max(1, runs)):
        diarized = ours(audio, reference, env, diarize=True)
        show(diarized)
        meta = json.loads((OUT / "ours_diarized" / f"{audio.stem}.json").read_text())
        spent = meta["metadata"]["timings"]["diarization"]
        shares.append(spent / (meta["metadata"]["processing_time"] - spent))
        print(f"  diarization {spent:.1f} s of {diarized.wall:.1f} s: {shares[-1]:+.1%}")
    each = ", ".join(f"{x:+.1%}" for x in shares)
    print(f"diarization extra time (6 min): {each}; median {statistics.median(shares):+.1%}")


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
    parser.add_argument("--rounds", type=int, default=3, help="6-min rounds, systems back to back")
    parser.add_argument("--layouts", type=int, default=0, help="shuffled 6-min files to score")
    parser.add_argument("--no-sequential", dest="sequential", action="store_false",
                        help="leave sequential faster-whisper out of the rounds")  # fmt: skip
    parser.add_argument("--gated", action="store_true",
                        help="also run ours with decoding=gated in each round")  # fmt: skip
    parser.add_argument("--short-only", action="store_true",
                        help="stop after the 6-minute rounds")  # fmt: skip
    parser.add_argument("--diarization-only", action="store_true",
                        help="only diarization's share, over --rounds runs")  # fmt: skip
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
    if args.diarization_only:
        diarization_share(short, reference, env, args.rounds)
        return
    rounds: list[dict[str, Result]] = []
    floors: list[float] = []
    for _ in range(args.rounds):
        systems = [
            *([lambda: plain(short, reference, model, env)] if args.sequential else []),
            lambda: batched(short, reference, model, env),
            lambda: ours(short, reference, env),
            *([lambda: ours(short, reference, env, decoding="gated")] if args.gated else []),
        ]
        rounds.append({})
        for system in systems:
            r = system()
            show(r)
            rounds[-1][r.system] = r
        seconds, windows = encoder_floor(short, model, env)
        print(f"{'encoder only (floor)':<30} {short.name:<16} {seconds:8.1f}"
              f"  ({windows} windows of 30 s)", flush=True)  # fmt: skip
        floors.append(seconds)

    def fastest(system: str) -> Result:
        return min((r[system] for r in rounds), key=lambda r: r.wall)

    # Each round's systems ran back to back, so their ratio is the least touched by
    # the host's speed drifting over the minutes of the whole run.
    mine = fastest(OURS)
    print()
    for other in [s for s in rounds[0] if s != OURS]:
        median_ratio(f"speed-up vs {other} per round (6 min)",
                     [r[other].wall / r[OURS].wall for r in rounds])  # fmt: skip
    print(f"  ({BATCHED}: batch {BATCH_SIZE}, beam 5; fastest of {args.rounds}:"
          f" {fastest(BATCHED).wall:.1f} s vs ours {mine.wall:.1f} s)")  # fmt: skip
    median_ratio("ours / encoder-only floor per round (wall time, start-up included)",
                 [r[OURS].wall / f for r, f in zip(rounds, floors, strict=True)])  # fmt: skip
    print("WER (6 min): " + ", ".join(f"{s} {r.wer:.2%}" for s, r in rounds[0].items()))
    if args.short_only:
        return
    if args.tuned_baseline:
        show(plain(short, reference, model, env, tuned=True))
    mine_long = ours(long, long_reference, env)
    show(mine_long)
    if args.full:
        show(plain(long, long_reference, model, env))
    print(f"peak RSS 60 min / 6 min (ours): {mine_long.peak_mb / mine.peak_mb:.2f}x"
          f" ({mine_long.peak_mb:.0f} MB vs {mine.peak_mb:.0f} MB)")  # fmt: skip
    print("peak RSS (6 min): " + ", ".join(f"{s} {r.peak_mb:.0f} MB" for s, r in rounds[0].items()))
    diarization_share(short, reference, env, args.rounds)
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
