"""Initial hub schema: halls, credentials, reference data, cases, ratings, events, health,
audit log; append-only triggers on ratings, case events, health samples and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Frozen: later changes go in new revisions. tests/hub/test_schema.py checks that the schema
this builds is the one hub/db/schema.py describes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ts = sa.DateTime(timezone=True)
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("ratings", "case_events", "device_health", "audit_log")


def upgrade() -> None:
    op.create_table(
        "halls",
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("area_code", sa.String(9), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.CheckConstraint("length(area_code) = 9", name="ck_halls_area_code_len"),
        sa.PrimaryKeyConstraint("hall_id", name="pk_halls"),
    )
    op.create_table(
        "hall_credentials",
        sa.Column("token_id", sa.String(12), nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("issued_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("revoked_at", ts, nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["hall_id"], ["halls.hall_id"], name="fk_hall_credentials_hall_id_halls"
        ),
        sa.PrimaryKeyConstraint("token_id", name="pk_hall_credentials"),
    )
    op.create_index("ix_hall_credentials_hall_id", "hall_credentials", ["hall_id"])
    op.create_table(
        "departments",
        sa.Column("dept_code", sa.String(18), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("area_code", sa.String(9), nullable=True),
        sa.Column("first_seen_at", ts, nullable=False),
        sa.CheckConstraint("length(dept_code) = 18", name="ck_departments_dept_code_len"),
        sa.PrimaryKeyConstraint("dept_code", name="pk_departments"),
    )
    op.create_table(
        "windows",
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("window_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("dept_code", sa.String(18), nullable=True),
        sa.Column("first_seen_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["dept_code"], ["departments.dept_code"], name="fk_windows_dept_code_departments"
        ),
        sa.ForeignKeyConstraint(["hall_id"], ["halls.hall_id"], name="fk_windows_hall_id_halls"),
        sa.PrimaryKeyConstraint("hall_id", "window_id", name="pk_windows"),
    )
    op.create_table(
        "staff_accounts",
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("name_masked", sa.String(32), nullable=True),
        sa.Column("first_seen_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["hall_id"], ["halls.hall_id"], name="fk_staff_accounts_hall_id_halls"
        ),
        sa.PrimaryKeyConstraint("hall_id", "staff_id", name="pk_staff_accounts"),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("first_seen_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["hall_id"], ["halls.hall_id"], name="fk_devices_hall_id_halls"),
        sa.PrimaryKeyConstraint("device_id", name="pk_devices"),
    )
    op.create_index("ix_devices_hall_id", "devices", ["hall_id"])
    op.create_table(
        "items",
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("item_name", sa.String(200), nullable=True),
        sa.Column("first_seen_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("item_code", name="pk_items"),
    )
    op.create_table(
        "cases",
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("case_no", sa.String(64), nullable=False),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("item_name", sa.String(200), nullable=True),
        sa.Column("dept_code", sa.String(18), nullable=True),
        sa.Column("window_id", sa.String(32), nullable=True),
        sa.Column("staff_id", sa.String(32), nullable=True),
        sa.Column("applicant_user_type", sa.String(16), nullable=True),
        sa.Column("applicant_name_masked", sa.String(32), nullable=True),
        sa.Column("applicant_phone_masked", sa.String(32), nullable=True),
        sa.Column("applicant_real_name", sa.Boolean(), nullable=True),
        sa.Column("opened_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("invited", sa.Boolean(), nullable=True),
        sa.Column("cancelled_at", ts, nullable=True),
        sa.Column("first_event_at", ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["dept_code"], ["departments.dept_code"], name="fk_cases_dept_code_departments"
        ),
        sa.ForeignKeyConstraint(["hall_id"], ["halls.hall_id"], name="fk_cases_hall_id_halls"),
        sa.ForeignKeyConstraint(
            ["item_code"], ["items.item_code"], name="fk_cases_item_code_items"
        ),
        sa.PrimaryKeyConstraint("hall_id", "case_no", name="pk_cases"),
    )
    op.create_table(
        "ratings",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("rating_key", sa.String(160), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("window_id", sa.String(32), nullable=True),
        sa.Column("staff_id", sa.String(32), nullable=True),
        sa.Column("device_id", sa.String(32), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("origin_id", sa.String(64), nullable=True),
        sa.Column("case_no", sa.String(64), nullable=True),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("item_name", sa.String(200), nullable=True),
        sa.Column("dept_code", sa.String(18), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("reasons", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("pf", sa.SmallInteger(), nullable=True),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("rated_at", ts, nullable=False),
        sa.Column("invited_at", ts, nullable=True),
        sa.Column("assess_number", sa.SmallInteger(), nullable=False),
        sa.Column("rater_name_masked", sa.String(32), nullable=True),
        sa.Column("rater_phone_masked", sa.String(32), nullable=True),
        sa.Column("rater_real_name", sa.Boolean(), nullable=True),
        sa.Column("rater_user_type", sa.String(16), nullable=True),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("token_id", sa.String(12), nullable=True),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name="ck_ratings_level_range"),
        sa.CheckConstraint("assess_number IN (1, 2)", name="ck_ratings_assess_number"),
        sa.CheckConstraint(
            "source IN ('device_press', 'qr_phone', 'default_rule', 'import')",
            name="ck_ratings_source",
        ),
        sa.ForeignKeyConstraint(
            ["dept_code"], ["departments.dept_code"], name="fk_ratings_dept_code_departments"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_ratings_device_id_devices"
        ),
        sa.ForeignKeyConstraint(["hall_id"], ["halls.hall_id"], name="fk_ratings_hall_id_halls"),
        sa.ForeignKeyConstraint(
            ["hall_id", "window_id"],
            ["windows.hall_id", "windows.window_id"],
            name="fk_ratings_hall_id_window_id_windows",
        ),
        sa.ForeignKeyConstraint(
            ["hall_id", "staff_id"],
            ["staff_accounts.hall_id", "staff_accounts.staff_id"],
            name="fk_ratings_hall_id_staff_id_staff_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["item_code"], ["items.item_code"], name="fk_ratings_item_code_items"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
        sa.UniqueConstraint("rating_key", name="uq_ratings_rating_key"),
    )
    op.create_index("ix_ratings_hall_id_rated_at", "ratings", ["hall_id", "rated_at"])
    op.create_index("ix_ratings_hall_id_case_no", "ratings", ["hall_id", "case_no"])
    op.create_table(
        "case_events",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_at", ts, nullable=False),
        sa.Column("window_id", sa.String(32), nullable=True),
        sa.Column("staff_id", sa.String(32), nullable=True),
        sa.Column("device_id", sa.String(32), nullable=True),
        sa.Column("case_no", sa.String(64), nullable=True),
        sa.Column("item_code", sa.String(64), nullable=True),
        sa.Column("item_name", sa.String(200), nullable=True),
        sa.Column("dept_code", sa.String(18), nullable=True),
        sa.Column("applicant_user_type", sa.String(16), nullable=True),
        sa.Column("applicant_name_masked", sa.String(32), nullable=True),
        sa.Column("applicant_phone_masked", sa.String(32), nullable=True),
        sa.Column("applicant_real_name", sa.Boolean(), nullable=True),
        sa.Column("invited", sa.Boolean(), nullable=True),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("token_id", sa.String(12), nullable=True),
        sa.ForeignKeyConstraint(
            ["hall_id"], ["halls.hall_id"], name="fk_case_events_hall_id_halls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.UniqueConstraint("event_key", name="uq_case_events_event_key"),
    )
    op.create_index("ix_case_events_hall_id_case_no", "case_events", ["hall_id", "case_no"])
    op.create_table(
        "device_health",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("health_key", sa.String(160), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("sampled_at", ts, nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("window_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("board", sa.String(24), nullable=True),
        sa.Column("firmware", sa.String(24), nullable=True),
        sa.Column("last_seen_at", ts, nullable=True),
        sa.Column("uptime_s", sa.BigInteger(), nullable=True),
        sa.Column("free_heap", sa.BigInteger(), nullable=True),
        sa.Column("outbox_depth", sa.BigInteger(), nullable=True),
        sa.Column("outbox_dropped", sa.BigInteger(), nullable=True),
        sa.Column("config_version", sa.BigInteger(), nullable=True),
        sa.Column("link", sa.String(16), nullable=True),
        sa.Column("counters", sa.Text(), nullable=False),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("token_id", sa.String(12), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_device_health_device_id_devices"
        ),
        sa.ForeignKeyConstraint(
            ["hall_id"], ["halls.hall_id"], name="fk_device_health_hall_id_halls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_health"),
        sa.UniqueConstraint("health_key", name="uq_device_health_health_key"),
    )
    op.create_index(
        "ix_device_health_device_id_sampled_at", "device_health", ["device_id", "sampled_at"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(160), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """The database refuses UPDATE and DELETE (and on PostgreSQL TRUNCATE) on these tables."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION hcp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'hcp: table % is append-only (% refused)', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION hcp_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION hcp_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'hcp: table {table} is append-only "
                    f"({verb} refused)'); END"
                )


def downgrade() -> None:
    # Dropping the tables drops their triggers with them.
    for table in (
        "audit_log",
        "device_health",
        "case_events",
        "ratings",
        "cases",
        "items",
        "devices",
        "staff_accounts",
        "windows",
        "departments",
        "hall_credentials",
        "halls",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION hcp_append_only()")
