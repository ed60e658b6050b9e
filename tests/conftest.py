"""Shared fixtures: the real eval speech, settings with a private model cache, one pipeline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.servers.proxy import tinyproxy  # noqa: F401  (a fixture)
from tests.servers.receiver import receiver  # noqa: F401  (a fixture)
from transcriber.config import Settings
from transcriber.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]

# Every server the tests call is on this machine: a proxy the environment names (a CI
# runner's, say) must not be asked for them. The proxy tests set their own.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1,localhost,::1"]))
EVAL = Path(os.environ.get("TRANSCRIBER_EVAL_DIR", ROOT.parent / "shared" / "eval"))


def eval_dir() -> Path:
    if not EVAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"eval speech folder {EVAL} is missing in CI")
        pytest.skip(f"eval speech folder {EVAL} is absent")
    return EVAL


def eval_rows(name: str) -> list[dict[str, Any]]:
    path = eval_dir() / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def eval_root() -> Path:
    return eval_dir()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("TRANSCRIBER_TEST_MODEL_DIR")
    return Path(shared) if shared else tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def settings(model_cache: Path) -> Settings:
    return Settings(model_dir=model_cache, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def pipeline(settings: Settings) -> Pipeline:
    return Pipeline(settings)
