"""Diarization alone on one file, as `make bench` measures it: `python -m bench.diarize_only
FILE`. Prints the time it took and the speakers found; the caller reads the peak RSS."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from transcriber.config import Settings
from transcriber.diarization import diarize
from transcriber.media.vad import Region


def main() -> None:
    path = Path(sys.argv[1])
    t = time.perf_counter()
    # One region stands for "there is speech": the segmentation model finds it itself.
    turns = diarize(path, [Region(0, 1)], cache_dir=Settings().model_dir)
    print(f"{time.perf_counter() - t:.2f} {len({x.speaker for x in turns})}")


if __name__ == "__main__":
    main()
