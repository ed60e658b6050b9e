"""A throwaway PostgreSQL cluster on 127.0.0.1, and a fresh empty database per test.

initdb refuses to run as root, so when the tests run as root the cluster belongs to
the `postgres` system user. The temporary folder is made under the system temp dir
(not pytest's, which that user cannot enter) and holds the data, log and socket.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, text

SUPERUSER = "postgres"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    # Not UTC, so that a store which trusted the session zone would show it.
    "timezone": "'Asia/Kolkata'",
}


def missing(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere (tests/servers/__init__.py)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def bindir() -> Path:
    """Where initdb and pg_ctl are: `pg_config --bindir`, else the newest Debian layout."""
    found: list[str] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        found.append(out.stdout.strip())
    found += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in found:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    missing("PostgreSQL server programs (initdb, pg_ctl) are not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresCluster:
    """One `postgres` server in its own temporary folder; `stop()` removes everything."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing("psycopg is not installed: pip install 'video-transcriber[postgres]'")
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="transcriber-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SUPERUSER)
            except KeyError:
                missing("running as root, and there is no `postgres` user to run initdb as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            args, cwd=self.root, capture_output=True, text=True, timeout=120, **self._as
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}{log}")

    def start(self) -> PostgresCluster:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
            "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        conf = dict(SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.root}'")
        with (self.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "60", "start")  # fmt: skip
        return self

    def resume(self) -> None:
        """Start the server again on its data after `stop(remove=False)`."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "60", "start")  # fmt: skip

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self, remove: bool = True, mode: str = "immediate") -> None:
        """Stop the server; `mode="fast"` writes a checkpoint first, so that with fsync off
        the data is still there when it is `resume`d."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def new_database(url: str) -> str:
    """CREATE DATABASE on the server of `url`; the URL of the new, empty database."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session: the URL of a database made at start."""
    cluster = PostgresCluster().start()
    try:
        yield new_database(cluster.url())
    finally:
        cluster.stop()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A new empty database on the session's server, for one test."""
    return new_database(postgres_url)
