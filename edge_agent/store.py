"""The agent's SQLite store: one file, WAL, one writer, migrations forward only.

Strategy:
- **Durability.** ``journal_mode=WAL`` and ``synchronous=FULL``: a transaction is on disk
  (the WAL is fsynced) when COMMIT returns. The agent acknowledges a device's rating only
  after that, and the device then deletes it from flash, so the commit *is* the rating's
  only copy: with ``NORMAL`` a power cut could lose the last transactions after the device
  was told they were safe. FULL costs one fsync per commit; the link batches every rating
  of a received chunk into one transaction, which keeps that cost per chunk, not per press.
- **One writer.** Inside the agent every statement runs on one thread (``Database``: a
  single-thread executor around one connection), so transactions never interleave and the
  event loop never waits on an fsync. Admin commands (``hcp agent add-device``) are a
  second process; SQLite's file lock and ``busy_timeout`` order them.
- **Explicit transactions.** The connection is in autocommit mode and ``tx()`` issues
  ``BEGIN IMMEDIATE`` … ``COMMIT``, so the write lock is taken at the start (no upgrade
  deadlocks) and a failure rolls back everything the transaction did.
- **Listeners hear of commits, not writes.** ``after_commit`` runs a callback once the
  outermost transaction has committed, and never if it rolls back, so nobody acts on a row
  that is not on disk (edge_agent.outbox uses it to wake the hub sync).
- **Never recreated.** ``open`` creates the file once and then only migrates
  (edge_agent.schema). A store written by newer code is refused, not "repaired".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from edge_agent.errors import Msg, StoreError
from edge_agent.schema import LATEST, MIGRATIONS

BUSY_TIMEOUT_MS = 5000  # an admin command holding the lock longer than this is a fault
QR_SECRET_BYTES = 32  # HMAC-SHA256 key for case tokens (edge_agent.qr)

log = logging.getLogger("hcp.agent.store")

P = ParamSpec("P")
T = TypeVar("T")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store:
    """One connection to the store. Not thread-safe: use it from one thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self.conn.row_factory = sqlite3.Row
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        # Called after each commit that queued an outbox item (edge_agent.outbox); the hub
        # sync sets it to wake at once instead of polling an empty outbox.
        self.on_enqueue: Callable[[], None] | None = None
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(
                "store.wal",
                Msg(
                    "存储 {p} 无法切换到 WAL 模式（{m}）", "store {p} cannot use WAL mode ({m})"
                ).fill(p=self.path, m=mode),
            )
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        migrate(self)

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE … COMMIT); nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self._after_commit.clear()
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        hooks, self._after_commit = self._after_commit, []  # dropped if COMMIT fails
        self.conn.execute("COMMIT")
        for fn in hooks:
            try:
                fn()
            except Exception:  # the transaction is on disk: a listener must not undo that
                log.exception("store.after_commit_failed", extra={"fields": {}})

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call fn once the current transaction has committed (at once outside one).

        Never if it rolls back; a callback registered twice in one transaction runs once.
        """
        if not self._depth:
            fn()
        elif fn not in self._after_commit:
            self._after_commit.append(fn)

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def scalar(self, sql: str, *args: Any) -> Any:
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # ---- meta, secrets and counters ----
    def meta(self, name: str) -> str | None:
        value = self.scalar("SELECT value FROM meta WHERE name = ?", name)
        return None if value is None else str(value)

    def set_meta(self, name: str, value: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def secret(self, name: str, size: int = QR_SECRET_BYTES) -> bytes:
        """A named secret, created from os.urandom on first use. Never logged."""
        with self.tx() as c:
            row = c.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return bytes(row[0])
            value = secrets.token_bytes(size)
            c.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (name, value))
            return value

    def bump(self, name: str, n: int = 1) -> None:
        """Add n to a persisted counter (call inside the transaction it belongs to)."""
        with self.tx() as c:
            c.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, n),
            )

    def counters(self) -> dict[str, int]:
        return {r["name"]: int(r["value"]) for r in self.all("SELECT name, value FROM counters")}

    def allocate_agent_session(self) -> int:
        """The agent's next link session number, persisted before it is used.

        Every link attachment takes a fresh one: the device's replay window refuses a
        session it has already seen, so two attachments must never share a number.
        """
        with self.tx() as c:
            row = c.execute("SELECT value FROM meta WHERE name = 'agent_session'").fetchone()
            value = int(row[0]) + 1 if row is not None else 1
            c.execute(
                "INSERT INTO meta (name, value) VALUES ('agent_session', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (str(value),),
            )
            return value

    def schema_version(self) -> int:
        return int(self.scalar("SELECT max(version) FROM schema_version") or 0)


def migrate(store: Store) -> list[int]:
    """Apply the missing migrations; returns the versions applied."""
    c = store.conn
    c.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)"
    )
    current = store.schema_version()
    if current > LATEST:
        raise StoreError(
            "store.too_new",
            Msg(
                "存储 {p} 的结构版本为 {v}，本程序只认识到 {l}：请升级 hcp",
                "store {p} has schema version {v}; this program knows up to {l}: upgrade hcp",
            ).fill(p=store.path, v=current, l=LATEST),
        )
    applied = []
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        c.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                c.execute(statement)
            c.execute(
                "INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)",
                (version, now_ms()),
            )
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        applied.append(version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration script on ';' (the scripts hold no ';' inside strings)."""
    out = []
    for part in sql.split(";"):
        lines = [line for line in part.splitlines() if not line.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            out.append(text)
    return out


class Database:
    """The store behind one writer thread, for asyncio code: ``await db.run(fn, ...)``.

    ``fn(store, ...)`` runs on the writer thread; calls run one at a time, in order.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hcp-store")
        self._store: Store | None = None

    def open(self) -> None:
        """Open (create, migrate) the store on the writer thread; raises StoreError."""
        self._store = self._executor.submit(Store, self.path).result()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Database.open() was not called")
        return self._store

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, self.store, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Blocking variant for threads other than the event loop's (tests, shutdown)."""
        call = functools.partial(fn, self.store, *args, **kwargs)
        return self._executor.submit(call).result()

    def close(self) -> None:
        if self._store is not None:
            store = self._store
            self._executor.submit(store.close).result()
            self._store = None
        self._executor.shutdown(wait=True)
