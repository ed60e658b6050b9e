"""Settings do what the docs say: an idle model is unloaded on a timer (never while a run
holds it), the bind rule counts keys made with `keys create`, weights are checked
against the sha256 pinned in the source."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from tests.conftest import eval_rows
from tests.integration.live_server import free_port
from tests.media_factory import load, write_audio
from transcriber.config import Settings
from transcriber.diarization.encoder import WEIGHTS_SHA256, weights_path
from transcriber.domain import Progress, TranscriptionOptions
from transcriber.errors import ModelError
from transcriber.media.vad import VAD_SHA256
from transcriber.models.packs import PACKS, check_weights, package_file
from transcriber.pipeline import Pipeline

TTL_S = 0.5


@pytest.mark.slow
def test_an_idle_model_is_unloaded_but_never_while_a_run_holds_it(
    model_cache: Path, eval_root: Path, tmp_path: Path
) -> None:
    settings = Settings(model_dir=model_cache, model_idle_ttl_s=TTL_S, _env_file=None)  # type: ignore[call-arg]
    pipeline = Pipeline(settings)
    rows = [r for r in eval_rows("asr.jsonl") if r["lang"] == "ru"][:6]
    audio = np.concatenate([load(eval_root / r["path"]) for r in rows])
    path = write_audio(tmp_path / "ru.wav", audio)
    started = time.monotonic()
    held_late: list[list[str]] = []

    def watch(p: Progress) -> None:  # mid-run, long after the TTL: still loaded
        if time.monotonic() - started > 4 * TTL_S:
            held_late.append(pipeline.engines.loaded())

    try:
        done = pipeline.run(path, TranscriptionOptions(language="ru"), on_progress=watch)
        assert done.text
        assert held_late and all(names == ["base"] for names in held_late)
        deadline = time.monotonic() + 10
        while pipeline.engines.loaded():  # unused now: the timer unloads it
            assert time.monotonic() < deadline, "the idle model was never unloaded"
            time.sleep(0.05)
        again = pipeline.run(path, TranscriptionOptions(language="ru"))  # loaded anew
        assert again.text == done.text
    finally:
        pipeline.engines.close()


def serve_and_find_the_bind(tmp_path: Path, model_cache: Path) -> str:
    port = free_port()
    env = os.environ | {"TRANSCRIBER_DATA_DIR": str(tmp_path / "data"), "PORT": str(port),
                        "TRANSCRIBER_MODEL_DIR": str(model_cache), "TRANSCRIBER_WORKERS": "0",
                        "TRANSCRIBER_STORAGE_URL": f"file://{tmp_path / 'store'}"}  # fmt: skip
    env.pop("HOST", None)
    env.pop("TRANSCRIBER_HOST", None)
    server = subprocess.Popen([sys.executable, "-m", "transcriber", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        listening = [c.laddr.ip for c in psutil.Process(server.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port]  # fmt: skip
        return listening[0]
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_key_made_with_keys_create_lets_the_service_bind_everywhere(
    tmp_path: Path, model_cache: Path
) -> None:
    assert serve_and_find_the_bind(tmp_path, model_cache) == "127.0.0.1"  # no key: local only
    env = os.environ | {"TRANSCRIBER_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "transcriber", "keys", "create", "ops"], env=env,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    assert serve_and_find_the_bind(tmp_path, model_cache) == "0.0.0.0"


def test_weights_are_the_ones_pinned_in_the_source(tmp_path: Path) -> None:
    from faster_whisper.utils import get_assets_path

    for pack in PACKS.values():
        for part in pack.parts:
            if pack.installed():
                assert check_weights(package_file(part), part.sha256, pack.install)
    assert check_weights(weights_path(), WEIGHTS_SHA256, "x")
    vad = Path(get_assets_path()) / "silero_vad_v6.onnx"
    assert check_weights(vad, VAD_SHA256, "x")
    tampered = tmp_path / "silero_vad_v6.onnx"
    shutil.copyfile(vad, tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01")
    with pytest.raises(ModelError, match=r"sha256 mismatch.*reinstall it: pip install"):
        check_weights(tampered, VAD_SHA256, "pip install 'faster-whisper>=1.2.1,<2'")


def test_bind_rule() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert plain.bind_host() == "127.0.0.1"
    assert plain.bind_host(stored_keys=True) == "0.0.0.0"
    assert Settings(_env_file=None, api_keys="k").bind_host() == "0.0.0.0"  # type: ignore[call-arg]
