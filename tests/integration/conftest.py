"""The service under test: an app over real settings, with its own data and store folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.servers.postgres import fresh_postgres_url, postgres_url  # noqa: F401  (fixtures)
from tests.servers.redis import redis_url  # noqa: F401  (a fixture)
from tests.servers.s3 import s3_bucket_url, s3_server  # noqa: F401  (fixtures)
from transcriber.api import create_app
from transcriber.config import Settings


def make_client(tmp: Path, model_cache: Path, **overrides: Any) -> TestClient:
    defaults = {"model_dir": model_cache, "data_dir": tmp / "data",
                "storage_url": f"file://{tmp / 'store'}"}  # fmt: skip
    settings = Settings(_env_file=None, **(defaults | overrides))  # type: ignore[call-arg]
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path, model_cache: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, model_cache, workers=1) as c:
        yield c
