"""Process-wide settings for CPU inference, applied once at start-up.

Two defaults of a Linux process cost this workload about a quarter of its time on a
2-core machine (docs/performance.md):

- glibc serves every allocation above 32 MB with a fresh `mmap` and gives it back on
  `free`. The Whisper encoder allocates its attention buffers (hundreds of MB per
  batch) anew on every call, so every call pays for millions of page faults, each
  one zeroing a page in the kernel. Here all threads share the main heap
  (`M_ARENA_MAX` 1), large blocks come from that heap (`M_MMAP_MAX` 0), and freed
  memory stays in the process (`M_TRIM_THRESHOLD`) until `release_memory()` hands
  it back, which the service does whenever its queue runs empty.
- OpenMP threads spin while they wait for work. With as many threads as cores, a
  spinning thread takes the core that the Python thread (decoding, VAD, features)
  needs. `OMP_WAIT_POLICY=PASSIVE` makes them sleep instead. libgomp reads it when
  it is loaded, so this must run before `ctranslate2` is imported.

A value the user has set in the environment is kept. Off with
`TRANSCRIBER_TUNE_RUNTIME=false`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

# mallopt(3) parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
KEEP_FREED_BYTES = 1 << 30  # freed heap kept for reuse before glibc trims it


@dataclass(frozen=True, slots=True)
class Tuning:
    """What `tune()` did, for logs and tests."""

    allocator: bool  # glibc's mallopt took the settings
    omp_passive: bool  # OMP_WAIT_POLICY is PASSIVE for libraries loaded from now on
    late: bool  # ctranslate2 was already loaded: the OpenMP setting came too late


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - no C library to speak of
        return None
    # musl has no mallopt/malloc_trim; only glibc has these knobs.
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def tune() -> Tuning:
    """Apply the allocator and OpenMP settings to this process; safe to call twice."""
    late = "ctranslate2" in sys.modules
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    omp_passive = os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE" and not late
    allocator = False
    libc = _libc()
    if libc is not None and not _user_tuned_malloc():
        allocator = all(
            libc.mallopt(param, value) == 1
            for param, value in (
                (M_ARENA_MAX, 1),
                (M_MMAP_MAX, 0),
                (M_TRIM_THRESHOLD, KEEP_FREED_BYTES),
            )
        )
    if late:
        log.debug("ctranslate2 already loaded: OMP_WAIT_POLICY not applied")
    return Tuning(allocator=allocator, omp_passive=omp_passive, late=late)


def release_memory() -> bool:
    """Give freed heap memory back to the system (after a job, when nothing else runs)."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


def _user_tuned_malloc() -> bool:
    return any(k.startswith("MALLOC_") for k in os.environ) or "GLIBC_TUNABLES" in os.environ
