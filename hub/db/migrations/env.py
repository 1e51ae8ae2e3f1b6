"""Alembic environment: run the migrations on the connection ``hub.db.migrate`` hands over.

The hub runs Alembic from code (``hcp hub migrate``, ``hcp hub serve --migrate``), never
from an alembic.ini: the connection arrives in ``config.attributes["connection"]``, inside a
transaction that already holds the migration lock (hub.db.migrate).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from hub.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER is limited
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the hub migrations with `hcp hub migrate` (hub.db.migrate)")
_run(connection)
