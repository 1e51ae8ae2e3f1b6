"""Column types: UTC timestamps that mean the same on SQLite and PostgreSQL.

PostgreSQL has ``timestamptz``; SQLite has text, and SQLAlchemy's SQLite DateTime silently
drops a time zone. So every timestamp is converted to UTC on the way in (a naive datetime is
a bug and raises), stored as UTC (on SQLite as ``YYYY-MM-DD HH:MM:SS.ffffff`` text, the
format SQLAlchemy itself writes, which sorts chronologically), and comes back as an aware
UTC datetime from both databases.

On SQLite the conversion is done here in one step each way (``isoformat`` out,
``fromisoformat`` back, both in C) instead of SQLAlchemy's generic string formatting and
regex parsing: ingest writes three timestamps per rating, and this was a tenth of its cost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def _aware_utc(value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _to_sqlite(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
    # Naive arithmetic instead of astimezone(): no new tz-aware object (cheaper, same text).
    offset = value.utcoffset()
    naive = value.replace(tzinfo=None)
    return (naive - offset if offset else naive).isoformat(" ", "microseconds")


def _from_sqlite(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _to_sqlite
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _from_sqlite
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else _aware_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
