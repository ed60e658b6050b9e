"""Process tuning: large freed blocks are reused (no page faults) and OpenMP sleeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter: allocate, touch and free a 256 MB block in a second thread
# (CTranslate2 allocates in its own worker thread) six times, and count the page faults
# of the last five rounds. Reused memory costs none; a fresh mapping costs one per page.
# Plain malloc, as CTranslate2 does (numpy asks the kernel for huge pages, which hides
# the cost from a fault count).
PROBE = textwrap.dedent(
    """
    import ctypes, json, os, resource, sys, threading
    tuning = None
    if sys.argv[1] == "tuned":
        from transcriber import runtime
        tuning = runtime.tune()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    SIZE = 256 * 1024 * 1024

    def rounds():
        for i in range(6):
            if i == 1:
                rounds.start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            block = libc.malloc(SIZE)
            ctypes.memset(block, 1, SIZE)
            libc.free(block)

    t = threading.Thread(target=rounds)
    t.start()
    t.join()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - rounds.start
    print(json.dumps({"faults": faults, "omp": os.environ.get("OMP_WAIT_POLICY"),
                      "tuning": tuning and [tuning.allocator, tuning.omp_passive, tuning.late]}))
    """
)
# The fewest faults five fresh 256 MB mappings can cost: one per 2 MB huge page, where
# the kernel backs anonymous memory with huge pages (THP "always").
FRESH_FAULTS = 5 * 256 // 2


def probe(mode: str, **env: str) -> dict[str, object]:
    ours = {"OMP_WAIT_POLICY", "GLIBC_TUNABLES"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in ours}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env={**clean, **env},
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_tuned_process_reuses_large_blocks() -> None:
    plain, tuned = probe("plain"), probe("tuned")
    # Untuned, every round maps and faults in the whole block again; tuned, it is reused.
    assert int(plain["faults"]) >= FRESH_FAULTS  # type: ignore[call-overload]
    assert int(tuned["faults"]) * 10 < int(plain["faults"])  # type: ignore[call-overload]
    assert tuned["tuning"] == [True, True, False]
    assert tuned["omp"] == "PASSIVE"
    assert plain["omp"] is None


def test_user_settings_win() -> None:
    tuned = probe("tuned", OMP_WAIT_POLICY="ACTIVE", MALLOC_ARENA_MAX="4")
    assert tuned["omp"] == "ACTIVE"
    assert tuned["tuning"] == [False, False, False]
    # The user's allocator settings stay in force: large blocks are mapped afresh.
    assert int(tuned["faults"]) >= FRESH_FAULTS  # type: ignore[call-overload]


# In a fresh tuned interpreter: a 256 MB block is freed and kept by the heap for reuse
# (the process's resident memory stays up), until release_memory() hands it back.
RELEASE = textwrap.dedent(
    """
    import ctypes, json
    from transcriber import runtime
    runtime.tune()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096

    SIZE = 256 * 1024 * 1024
    base = rss()
    block = libc.malloc(SIZE)
    ctypes.memset(block, 1, SIZE)
    libc.free(block)
    kept = rss() - base
    released = runtime.release_memory()
    print(json.dumps({"kept": kept, "released": released, "after": rss() - base}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_release_memory_gives_the_kept_heap_back() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    clean.pop("GLIBC_TUNABLES", None)
    out = subprocess.run([sys.executable, "-c", RELEASE], env=clean, capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    got = json.loads(out.stdout)
    mb = 1024 * 1024
    assert got["kept"] > 200 * mb  # freed, but kept for the next job
    assert got["released"] is True
    assert got["after"] < 50 * mb, got  # and now given back
