"""`make bench` (live part): live transcription over `WS /ws/live` at real time.

Starts `transcriber serve`, then:

- accuracy: streams the Russian dev clips (the same ~6.6-minute file as `bench.run`)
  at real time, and scores the joined finals against the reference and against the
  offline transcript of the same file, made by the same service in the same run;
- latency: from the moment the audio at the VAD's end of speech was sent to the
  `final` event (median, p95), and from the audio at the start of speech (the VAD's,
  with its 300 ms of padding) to the utterance's first `partial`;
- capacity (`--part capacity`): 1, 2, … sessions at once, each streaming a minute of
  the same speech at real time (starting a little apart, as people do); the capacity
  is the most sessions whose median final latency stays within twice that of one.

Times are taken by the client, so they include the network stack and the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np

from bench.run import EVAL, GAP_S, OUT, Clips
from transcriber.evaluation.wer import corpus_wer
from transcriber.live.client import LiveRun, frames, live_url, stream

BYTES_PER_S = 32000  # 16 kHz 16-bit


class Service:
    """`transcriber serve` on a free port with its own data, for the length of a `with`."""

    def __init__(self, sessions: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="bench-live-"))
        self.env = {**os.environ, "PORT": str(self.port),
                    "TRANSCRIBER_DATA_DIR": str(self.root / "data"),
                    "TRANSCRIBER_STORAGE_URL": f"file://{self.root / 'store'}",
                    "TRANSCRIBER_MAX_LIVE_SESSIONS": str(sessions)}  # fmt: skip

    def __enter__(self) -> Service:
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "transcriber", "serve"],
                                     env=self.env, stdout=log, stderr=log)  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        sys.exit(f"the service did not start; see {self.root / 'server.log'}")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)

    def offline(self, path: Path) -> str:
        """The file's transcript from an ordinary task of the same service."""
        with path.open("rb") as f:
            task = httpx.post(f"{self.url}/api/tasks", files={"file": (path.name, f)},
                              data={"language": "ru"}, timeout=120).json()  # fmt: skip
        while (state := httpx.get(f"{self.url}/api/tasks/{task['id']}").json())["status"] in (
            "queued",
            "processing",
        ):
            time.sleep(1.0)
        if state["status"] != "completed":
            sys.exit(f"the offline task failed: {state.get('error')}")
        return str(httpx.get(f"{self.url}/api/tasks/{task['id']}/result").json()["text"])


def pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


async def live(url: str, data: bytes, delay: float = 0.0) -> LiveRun:
    await asyncio.sleep(delay)
    start = {"type": "start", "language": "ru"}
    return await stream(live_url(url), start, frames(data, BYTES_PER_S), BYTES_PER_S, 1.0,
                        limit_s=None)  # fmt: skip


def final_latencies(run: LiveRun) -> list[float]:
    """Per utterance: from sending the audio at the VAD's end of speech to its final."""
    out = []
    for i, (_, m) in enumerate(run.messages):
        if m["type"] != "speech_stopped":
            continue
        u = m["utterance"]
        finals = (t for t, f in run.messages[i:] if f["type"] == "final" and f["utterance"] == u)
        final = next(finals, None)
        if final is not None:
            out.append(final - run.sent_at(m["at"]))
    return out


def partial_latencies(run: LiveRun) -> tuple[list[float], int]:
    """From sending the start of speech to the first partial; and how many utterances."""
    out, utterances = [], 0
    for i, (_, m) in enumerate(run.messages):
        if m["type"] != "speech_started":
            continue
        utterances += 1
        u = m["utterance"]
        partials = (
            t for t, p in run.messages[i:] if p["type"] == "partial" and p["utterance"] == u
        )
        first = next(partials, None)
        if first is not None:
            out.append(first - run.sent_at(m["at"]))
    return out, utterances


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def accuracy(clips: Clips) -> None:
    path = OUT / "ru_6min.wav"
    reference = clips.write(path, clips.rows, [GAP_S] * len(clips.rows))
    data = pcm(path)
    print(f"live: {path.name}, {len(data) / BYTES_PER_S / 60:.1f} min streamed at real time")
    with Service(sessions=2) as service:
        t = time.perf_counter()
        offline = service.offline(path)
        print(f"offline task of the same file: {time.perf_counter() - t:.1f} s")
        run = asyncio.run(live(service.url, data))
    finals = " ".join(m["text"] for m in run.of_type("final"))
    (OUT / "live_finals.txt").write_text(finals + "\n")
    (OUT / "live_events.json").write_text(json.dumps(run.messages, ensure_ascii=False))
    lat = final_latencies(run)
    first, utterances = partial_latencies(run)
    print(f"utterances {utterances}, finals {len(run.of_type('final'))},"
          f" partials {len(run.of_type('partial'))}")  # fmt: skip
    print(f"final latency after the VAD's end of speech: median {statistics.median(lat):.2f} s,"
          f" p95 {p95(lat):.2f} s, max {max(lat):.2f} s (n={len(lat)})")  # fmt: skip
    if first:
        middle = statistics.median(first)
        print(
            f"first partial after the start of speech: median {middle:.2f} s,"
            f" p95 {p95(first):.2f} s; {len(first)} of {utterances} utterances had one"
        )
    live_wer = corpus_wer([(reference, finals)], "ru")
    offline_wer = corpus_wer([(reference, offline)], "ru")
    print(f"WER vs reference: live finals {live_wer:.2%}, offline {offline_wer:.2%}"
          f" (difference {100 * (live_wer - offline_wer):+.2f} points)")  # fmt: skip
    against = corpus_wer([(offline, finals)], "ru")
    print(f"WER of live finals against the offline transcript: {against:.2%}")


def capacity(clips: Clips, most: int, seconds: float) -> None:
    path = OUT / "ru_6min.wav"
    clips.write(path, clips.rows, [GAP_S] * len(clips.rows))
    data = pcm(path)[: int(seconds * BYTES_PER_S)]
    print(f"\ncapacity: sessions at once, each streaming {seconds:.0f} s at real time")
    print(f"{'sessions':>8} {'median s':>9} {'p95 s':>7} {'finals':>7}")
    rng = random.Random(0)
    medians: dict[int, float] = {}
    with Service(sessions=most) as service:
        for n in range(1, most + 1):

            async def all_at_once(n: int = n) -> list[LiveRun]:
                delays = [rng.uniform(0, 2.0) if i else 0.0 for i in range(n)]
                return await asyncio.gather(*(live(service.url, data, d) for d in delays))

            runs = asyncio.run(all_at_once())
            lat = [x for r in runs for x in final_latencies(r)]
            medians[n] = statistics.median(lat)
            print(f"{n:>8} {medians[n]:>9.2f} {p95(lat):>7.2f} {len(lat):>7}", flush=True)
            if medians[n] > 2.5 * medians[1]:
                break
    held = max(n for n, m in medians.items() if m <= 2 * medians[1])
    print(f"capacity: {held} concurrent real-time sessions before the median final latency"
          f" doubles ({medians[1]:.2f} s with one)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=("all", "accuracy", "capacity"), default="all")
    parser.add_argument("--sessions", type=int, default=6, help="most sessions tried at once")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per capacity session")
    args = parser.parse_args()
    if not EVAL.is_dir():
        sys.exit(f"eval speech not found at {EVAL}")
    OUT.mkdir(parents=True, exist_ok=True)
    clips = Clips.load()
    if args.part in ("all", "accuracy"):
        accuracy(clips)
    if args.part in ("all", "capacity"):
        capacity(clips, args.sessions, args.seconds)


if __name__ == "__main__":
    main()
