"""Connections to the conversation log: the engine factory (SQLite pragmas, PostgreSQL pool),
database URLs, and `LogDatabase`, the base that the writer, the queries and erasure share.

SQLite gets WAL, foreign keys and a busy timeout on every connection, and a writer takes the
write lock up front (`BEGIN IMMEDIATE`); PostgreSQL URLs mean psycopg 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.kernel.datadir import DIR_MODE, create_private
from bot.kernel.logs import redact_url  # re-exported: URLs are printed through the one helper

__all__ = ["LogDatabase", "ensure_sqlite_dir", "make_engine", "normalize_url", "redact_url"]


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def ensure_sqlite_dir(url: str) -> None:
    """For a SQLite file database: create its folder (0700 when it is new; SQLite creates the
    file, not its folder) and the file itself, empty and 0600, before SQLite would create it
    with the umask's mode. SQLite gives the -wal and -shm files the database file's mode, so
    the conversation log stays private (bot/kernel/datadir.py). An existing file keeps its mode."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:"):
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        create_private(path)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    ensure_sqlite_dir(url)
    parsed = make_url(url)
    # Errors must not carry message text into the logs (bot/kernel/logs.py: no text at INFO or above).
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is off: `_sqlite_begin` below starts them.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if parsed.database and parsed.database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # A writer takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction
            # that reads, then writes, fails at once with "database is locked" when another
            # process wrote in between, whatever the busy timeout.
            write = connection.get_execution_options().get("sqlite_write")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
    return create_engine(url, **kwargs)


class LogDatabase:
    """An engine and its sessions: plain ones for reading, `_writes` for writing (on SQLite they
    begin with the write lock). Thread-safe; one per process is enough."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = (url_or_engine if isinstance(url_or_engine, Engine)
                       else make_engine(url_or_engine))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.engine.execution_options(sqlite_write=True),
                                    expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()
