"""The job store's database connection: SQLite or PostgreSQL, with errors a person can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError

from transcriber.errors import MissingExtraError, UnavailableError

POSTGRES_INSTALL = "pip install 'video-transcriber[postgres]'"
CONNECT_TIMEOUT_S = 10


def parse(url: str) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3, which the `postgres` extra installs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: URL) -> str:
    """Where the database is, for messages: never the password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return f"database at {where} ({url.render_as_string(hide_password=True)})"


def make_engine(url: str) -> Engine:
    parsed = parse(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(parsed, **kwargs)
    except ImportError as e:
        if parsed.get_backend_name() == "postgresql":
            raise MissingExtraError(
                f"a PostgreSQL job store needs the psycopg driver ({e}); install it with:\n"
                f"{POSTGRES_INSTALL}"
            ) from e
        raise
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def reachable(engine: Engine) -> Iterator[None]:
    """Turn a failure to connect (or to open the file) into one clear UnavailableError."""
    try:
        yield
    except DBAPIError as e:
        if not isinstance(e.orig, engine.dialect.loaded_dbapi.OperationalError):
            raise
        reason = " ".join(str(e.orig).split()) or type(e.orig).__name__
        raise UnavailableError(f"cannot connect to the job {describe(engine.url)}: {reason}") from e


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
