"""Run the hub's Alembic migrations from code, safely from several processes at once.

The migration runs in one transaction that first takes a lock: ``pg_advisory_xact_lock`` on
PostgreSQL, the write lock (``BEGIN IMMEDIATE``, hub.db.engine) on SQLite. A second process
that starts ``hcp hub serve --migrate`` at the same moment waits, then finds the schema at
head and does nothing. PostgreSQL DDL is transactional, so a failed migration leaves the old
schema intact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Arbitrary, fixed: the advisory lock key every hub process uses for migrations ("hcp1").
PG_MIGRATION_LOCK = 0x68637031


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "hub migrations have no head"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate up to `revision`; returns (revision before, revision after)."""
    return _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    """Migrate down to `revision` ("base": no tables). Destroys data: for tests and repair."""
    return _run(engine, command.downgrade, revision)


def _run(
    engine: Engine, step: Callable[[Config, str], None], revision: str
) -> tuple[str | None, str | None]:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        step(_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after
