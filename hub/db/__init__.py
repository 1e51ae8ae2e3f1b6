"""Hub storage: SQLAlchemy Core tables, engines for SQLite and PostgreSQL, Alembic migrations.

``schema`` is the metadata (the shape the code expects), ``migrations/versions`` the frozen
steps that build it (a test checks the two agree on both databases), ``engine`` makes an
engine with each database's settings, ``migrate`` runs Alembic from code, ``upsert`` writes
the dialect-specific ``INSERT … ON CONFLICT`` that idempotent ingest is built on.
"""
