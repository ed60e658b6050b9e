"""Choosing the job database: a missing driver or an unreachable server says what to do."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from transcriber.errors import MissingExtraError, UnavailableError
from transcriber.jobs.database import POSTGRES_INSTALL, make_engine, parse
from transcriber.jobs.store import SqlJobStore


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_a_missing_driver_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    with pytest.raises(MissingExtraError) as e:
        SqlJobStore("postgresql+psycopg://app@127.0.0.1:5432/jobs")
    assert e.value.message.splitlines()[-1] == "pip install 'video-transcriber[postgres]'"
    assert POSTGRES_INSTALL == "pip install 'video-transcriber[postgres]'"


def test_plain_postgres_urls_mean_psycopg_3() -> None:
    for url in ("postgresql://app@db/jobs", "postgres://app@db/jobs"):
        assert parse(url).drivername == "postgresql+psycopg"
        assert parse(url).render_as_string() == "postgresql+psycopg://app@db/jobs"
    assert parse("sqlite:///data/x.db").drivername == "sqlite"
    engine = make_engine("postgres://app@db/jobs")  # no connection is made yet
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_an_unreachable_server_is_named_without_its_password() -> None:
    port = closed_port()
    with pytest.raises(UnavailableError) as e:
        SqlJobStore(f"postgresql+psycopg://app:s3cret@127.0.0.1:{port}/jobs")
    message = e.value.message
    assert message.startswith(f"cannot connect to the job database at 127.0.0.1:{port} (")
    assert "Connection refused" in message and "\n" not in message
    assert "s3cret" not in message and "app:***@" in message
    assert e.value.http_status == 503


def test_an_unopenable_sqlite_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "folder" / "jobs.db"
    with pytest.raises(UnavailableError, match=f"SQLite database {path}: unable to open"):
        SqlJobStore(f"sqlite:///{path}")
