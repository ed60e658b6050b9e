"""The event loop never waits for the database: while a write is held up for seconds, the
service keeps answering everyone else at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from tests.integration.live_server import live_app
from tests.media_factory import write_audio

HELD_S = 2.0


def test_a_held_database_write_does_not_stall_other_requests(
    tmp_path: Path, model_cache: Path
) -> None:
    media = write_audio(tmp_path / "tone.wav", np.zeros(16000 * 2, np.float32))
    with live_app(tmp_path, model_cache, workers=0) as (url, _):
        assert httpx.get(f"{url}/health").status_code == 200
        # Another process's long transaction: every write waits for it (busy_timeout).
        db = sqlite3.connect(tmp_path / "data" / "transcriber.db", isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        answers: list[tuple[int, float]] = []

        def submit(path: Path, route: str, field: str) -> None:
            started = time.monotonic()
            with path.open("rb") as f:
                r = httpx.post(f"{url}{route}", files={field: (path.name, f)}, timeout=30)
            answers.append((r.status_code, time.monotonic() - started))

        writers = [
            threading.Thread(target=submit, args=(media, "/api/tasks", "file")),
            threading.Thread(target=submit, args=(media, "/api/tasks", "file")),
        ]
        for w in writers:
            w.start()
        worst, held_until = 0.0, time.monotonic() + HELD_S
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < held_until:  # probe while the lock is held
                started = time.monotonic()
                assert client.get(f"{url}/health").status_code == 200
                worst = max(worst, time.monotonic() - started)
                time.sleep(0.02)
            db.execute("COMMIT")
        for w in writers:
            w.join(timeout=30)
        db.close()
    # The uploads really waited on the database, and nobody else waited with them.
    assert [status for status, _ in answers] == [202, 202]
    assert min(took for _, took in answers) > HELD_S * 0.5
    assert worst < 0.25, f"/health took {worst:.3f} s while a write was held up"
