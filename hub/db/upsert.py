"""``INSERT … ON CONFLICT`` for SQLite and PostgreSQL: the base of idempotent ingest.

Both databases implement the same clause with the same meaning; SQLAlchemy spells it per
dialect. Idempotency rests on the database's unique constraints, never on reading first
(DESIGN.md: nothing may assume one hub process): two transactions inserting the same key
both succeed, one row is stored, and each learns from ``RETURNING`` whether it was the one.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

_UNSET = object()
# Bind parameters in one SQLite statement: it allows 32,766 (since 3.32).
SQLITE_MAX_BIND_PARAMS = 32_000


def _insert(connection: Connection, table: Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no ON CONFLICT support for {connection.dialect.name}")


def insert_ignore(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows`, skipping any that conflict with a unique constraint."""
    if rows:
        connection.execute(_insert(connection, table).on_conflict_do_nothing(), list(rows))


def insert_new_keys(
    connection: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> set[Any]:
    """Insert `rows` skipping conflicts; return the `key` values of the rows really inserted.

    The hot path of ingest, so it bypasses SQLAlchemy's generic executemany-with-RETURNING
    machinery (which cost about as much per row as the database itself) and talks to the
    driver directly, with every value encoded by its column's own SQLAlchemy bind processor
    (the same encoding as any Core insert):
    - SQLite: one multi-row ``INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING key``
      per chunk (sqlite3's executemany cannot return rows);
    - PostgreSQL: psycopg's pipelined ``executemany(…, returning=True)`` of the one-row
      statement (a multi-row statement with thousands of placeholders is parsed in Python
      by psycopg on every call, which cost more than the inserts).
    """
    if not rows:
        return set()
    names = list(rows[0])
    dialect = connection.dialect
    params = _encode(table, names, rows, connection)
    quote = dialect.identifier_preparer.quote
    head = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) VALUES "
    )
    tail = f" ON CONFLICT DO NOTHING RETURNING {quote(key)}"
    if dialect.name == "postgresql":
        one = "(" + ", ".join(["%s"] * len(names)) + ")"
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(head + one + tail, params, returning=True)
            inserted: set[Any] = set()
            while True:
                inserted.update(r[0] for r in cursor.fetchall())
                if not cursor.nextset():
                    return inserted
        finally:
            cursor.close()
    one = "(" + ", ".join(["?"] * len(names)) + ")"
    per_statement = max(1, SQLITE_MAX_BIND_PARAMS // len(names))
    inserted = set()
    for start in range(0, len(params), per_statement):
        chunk = params[start : start + per_statement]
        flat = tuple(itertools.chain.from_iterable(chunk))  # C loop: ~1 us/row less
        sql = head + ", ".join([one] * len(chunk)) + tail
        inserted.update(r[0] for r in connection.exec_driver_sql(sql, flat))
    return inserted


def execute_rows(
    connection: Connection, head: str, tail: str, params: Sequence[Sequence[Any]]
) -> None:
    """Run ``head (…) tail`` for every row of already-encoded `params`, in few statements:
    psycopg's executemany of the one-row statement on PostgreSQL, one multi-row statement
    per SQLITE_MAX_BIND_PARAMS binds on SQLite. `head` ends with ``VALUES ``."""
    if not params:
        return
    width = len(params[0])
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(head + "(" + ", ".join(["%s"] * width) + ")" + tail, params)
        return
    one = "(" + ", ".join(["?"] * width) + ")"
    per_statement = max(1, SQLITE_MAX_BIND_PARAMS // width)
    for start in range(0, len(params), per_statement):
        chunk = params[start : start + per_statement]
        flat = tuple(itertools.chain.from_iterable(chunk))  # C loop: ~1 us/row less
        connection.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, flat)


def _encode(
    table: Table, names: list[str], rows: Sequence[Mapping[str, Any]], connection: Connection
) -> list[tuple[Any, ...]]:
    """Rows as tuples in `names` order, each value encoded by its column's bind processor."""
    get_values = operator.itemgetter(*names)
    # [column index, processor, last value, its encoding]: a batch shares objects such as
    # its receive time, which is then encoded once.
    processors: list[list[Any]] = [
        [i, process, _UNSET, None]
        for i, name in enumerate(names)
        if (process := table.c[name].type.bind_processor(connection.dialect)) is not None
    ]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        if len(row) != len(names):
            raise ValueError("insert_new_keys: every row must have the same columns")
        values = list(get_values(row)) if len(names) > 1 else [get_values(row)]
        for slot in processors:
            value = values[slot[0]]
            if value is not slot[2]:  # the same object as the row before: reuse
                slot[2], slot[3] = value, slot[1](value)
            values[slot[0]] = slot[3]
        out.append(tuple(values))
    return out


def upsert_fill(
    connection: Connection,
    table: Table,
    index_elements: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    fill: Sequence[str],
    earliest: Sequence[str] = (),
) -> None:
    """Insert `rows`; on conflict, set each column of `fill` only where it is still NULL
    (first value wins, whatever order events arrive in) and keep the earliest of `earliest`."""
    if not rows:
        return
    stmt = _insert(connection, table)
    updates: dict[str, ColumnElement[Any]] = {}
    for name in fill:
        updates[name] = _coalesce(table.c[name], stmt.excluded[name])
    for name in earliest:
        updates[name] = _least(connection, table.c[name], stmt.excluded[name])
    stmt = stmt.on_conflict_do_update(index_elements=list(index_elements), set_=updates)
    connection.execute(stmt, list(rows))


def _coalesce(current: Any, new: Any) -> ColumnElement[Any]:
    result: ColumnElement[Any] = func.coalesce(current, new)
    return result


def _least(connection: Connection, current: Any, new: Any) -> ColumnElement[Any]:
    # SQLite's two-argument min() is its scalar LEAST.
    fn = func.least if connection.dialect.name == "postgresql" else func.min
    result: ColumnElement[Any] = fn(current, new)
    return result
