"""The service under test: an app over real settings, with its own data and store folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from transcriber.api import create_app
from transcriber.config import Settings


def make_client(tmp: Path, model_cache: Path, **overrides: Any) -> TestClient:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model_dir=model_cache,
        data_dir=tmp / "data",
        storage_url=f"file://{tmp / 'store'}",
        **overrides,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path, model_cache: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, model_cache, workers=1) as c:
        yield c
