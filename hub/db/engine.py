"""Engines for the two databases the hub runs on, each set up for concurrent writers.

- SQLite (the embedded default): WAL journal (readers never block the writer), foreign keys
  on (SQLite has them off by default), ``synchronous=FULL`` (a 200 answer tells the agent it
  may delete its copy, so a commit must survive a power cut, not only a crash), a busy timeout
  so concurrent writers queue instead of failing, and ``BEGIN IMMEDIATE`` for every
  transaction that writes: the write lock is taken at the start, so two processes never
  deadlock upgrading a read lock (SQLite would fail one of them at once, whatever the
  timeout). Connections from ``read_connection`` begin a plain deferred transaction.
- PostgreSQL (production): psycopg 3; a URL written ``postgresql://`` is given that driver.
  Connections are checked before use, so a restarted server costs one retry, not an error.

Several hub processes may share either database (DESIGN.md: nothing assumes one process):
correctness comes from unique constraints and ``ON CONFLICT``, not from this module.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# How long a SQLite writer waits for the write lock before the request is answered 503
# (Retry-After): long enough to ride out a few 1,000-item batches of other writers.
SQLITE_BUSY_TIMEOUT_S = 10.0
# Where `hcp hub serve` keeps its database when no URL is given (relative to the working
# directory; /var/ is in .gitignore).
DEFAULT_SQLITE_PATH = Path("var") / "hub" / "hub.sqlite3"
DATABASE_URL_ENV = "HCP_HUB_DATABASE_URL"
# Per process. PostgreSQL's default max_connections is 100: ten hub processes fit.
PG_POOL_SIZE = 8
PG_MAX_OVERFLOW = 2


# Execution option for connections that only read: on SQLite they begin a deferred
# transaction (no write lock; WAL readers never wait for the writer).
READ_ONLY = "hcp_read_only"


def read_connection(engine: Engine) -> Connection:
    """A connection for reading only (use as a context manager)."""
    return engine.connect().execution_options(**{READ_ONLY: True})


class DatabaseUrlError(ValueError):
    """A database URL the hub cannot use; the message is (zh-CN, en)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


def default_database_url() -> str:
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def normalize_url(url: str) -> URL:
    """Parse `url`; give PostgreSQL the psycopg 3 driver; refuse other databases."""
    if url.startswith("postgres://"):  # the libpq / Heroku spelling
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise DatabaseUrlError(
            f"数据库地址无法解析：{url!r}", f"cannot parse the database URL {url!r}"
        ) from e
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise DatabaseUrlError(
        f"不支持的数据库 {backend!r}：请使用 sqlite:///路径 或 postgresql://…",
        f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://…",
    )


def make_engine(url: str, *, pool_size: int = PG_POOL_SIZE, echo: bool = False) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    return create_engine(
        parsed,
        echo=echo,
        pool_size=pool_size,
        max_overflow=PG_MAX_OVERFLOW,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise DatabaseUrlError(
            "SQLite 数据库必须是文件（多个连接和进程要共享它）",
            "the SQLite database must be a file (several connections and processes share it)",
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _ensure_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _ensure_wal(cursor: Any) -> None:
    """Switch the database file to WAL (persistent: usually it already is).

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy handler, when another connection holds a lock at that
    moment, as happens when several hub processes open a new database together. So the
    current mode is read first (a shared lock, which does wait), and the switch is retried
    for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
