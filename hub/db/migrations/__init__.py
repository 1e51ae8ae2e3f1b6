"""Alembic environment and versions for the hub database (run through hub.db.migrate)."""
