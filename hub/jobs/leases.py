"""Job leases: one hub process at a time runs a scheduled job (DESIGN.md: nothing may assume
one hub process).

A lease is a row of ``job_leases``. Taking it, renewing it and taking over an expired one are
the same single statement, ``INSERT … ON CONFLICT (name) DO UPDATE … WHERE <ours or expired>
RETURNING holder``: the database serialises concurrent attempts on the row, so exactly one
process gets a row back. No read-then-write, no advisory lock, and the same SQL on SQLite and
PostgreSQL. A holder that dies simply stops renewing; the lease expires after its TTL and
the next process takes it. Holders are "<host>:<pid>:<random>" so a restarted process never
mistakes an old lease of its pid for its own.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.schema import job_leases


def new_holder() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


def take(connection: Connection, *, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; True if held now."""
    insert = (
        postgresql.insert(job_leases)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(job_leases)
    )
    values = insert.values(name=name, holder=holder, acquired_at=now, expires_at=now + ttl)
    current = job_leases.c
    statement = values.on_conflict_do_update(
        index_elements=[current.name],
        set_={
            "holder": values.excluded.holder,
            "acquired_at": values.excluded.acquired_at,
            "expires_at": values.excluded.expires_at,
        },
        where=or_(current.holder == values.excluded.holder, current.expires_at <= now),
    ).returning(current.holder)
    return connection.execute(statement).first() is not None


def release(connection: Connection, *, name: str, holder: str, now: datetime) -> None:
    """Let the lease go at once (if it is still ours), so another process need not wait."""
    connection.execute(
        update(job_leases)
        .where(and_(job_leases.c.name == name, job_leases.c.holder == holder))
        .values(expires_at=now)
    )


__all__ = ["new_holder", "release", "take"]
