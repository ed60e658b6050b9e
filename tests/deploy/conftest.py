"""The deployment files under deploy/, each exercised by the real tool that reads it.

A tool that is missing skips its tests with the line that installs it, except in
CI (`CI` set), where every test must run (.ci/run installs them all).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.servers.docker import docker  # noqa: F401  (a fixture)
from tests.servers.postgres import fresh_postgres_url, missing, postgres_url  # noqa: F401
from tests.servers.redis import redis_url  # noqa: F401  (a fixture)
from tests.servers.s3 import s3_bucket_url, s3_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str, install: str) -> str:
    """The path of a command-line tool: this venv's, then PATH's; else skip (fail in CI)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        found = shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        missing(f"{name} is not installed: {install}")
    return found
