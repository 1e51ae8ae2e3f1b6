"""Accounts (users, departments in scope, sessions) and the 差评 workflow (work orders, their
append-only steps, revisit samples).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ts = sa.DateTime(timezone=True)
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("work_order_steps", "revisit_samples")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("password_changed_at", ts, nullable=False),
        sa.Column("disabled_at", ts, nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'dept_handler', 'hotline_verifier', 'auditor')",
            name="ck_users_role",
        ),
        sa.PrimaryKeyConstraint("username", name="pk_users"),
    )
    op.create_table(
        "user_departments",
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("dept_code", sa.String(18), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name="fk_user_departments_username_users"
        ),
        sa.ForeignKeyConstraint(
            ["dept_code"],
            ["departments.dept_code"],
            name="fk_user_departments_dept_code_departments",
        ),
        sa.PrimaryKeyConstraint("username", "dept_code", name="pk_user_departments"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("session_id", sa.String(12), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("issued_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.ForeignKeyConstraint(
            ["username"], ["users.username"], name="fk_user_sessions_username_users"
        ),
        sa.PrimaryKeyConstraint("session_id", name="pk_user_sessions"),
    )
    op.create_index("ix_user_sessions_username", "user_sessions", ["username"])
    op.create_table(
        "work_orders",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("rating_id", big_id, nullable=False),
        sa.Column("hall_id", sa.String(32), nullable=False),
        sa.Column("case_no", sa.String(64), nullable=True),
        sa.Column("dept_code", sa.String(18), nullable=True),
        sa.Column("window_id", sa.String(32), nullable=True),
        sa.Column("staff_id", sa.String(32), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("opened_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("closed_at", ts, nullable=True),
        *(
            sa.Column(f"{name}_{kind}_at", ts, nullable=True)
            for name in ("callback", "rectify", "feedback", "report")
            for kind in ("due", "warn")
        ),
        sa.Column("deadline_error", sa.Text(), nullable=True),
        sa.Column("appeals", sa.SmallInteger(), nullable=False),
        sa.Column("reopened", sa.SmallInteger(), nullable=False),
        sa.Column("follow_up_rating_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rating_id"], ["ratings.id"], name="fk_work_orders_rating_id_ratings"
        ),
        sa.ForeignKeyConstraint(
            ["hall_id"], ["halls.hall_id"], name="fk_work_orders_hall_id_halls"
        ),
        sa.ForeignKeyConstraint(
            ["dept_code"], ["departments.dept_code"], name="fk_work_orders_dept_code_departments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_work_orders"),
        sa.UniqueConstraint("rating_id", name="uq_work_orders_rating_id"),
    )
    op.create_index("ix_work_orders_state_dept_code", "work_orders", ["state", "dept_code"])
    op.create_index("ix_work_orders_hall_id_case_no", "work_orders", ["hall_id", "case_no"])
    op.create_table(
        "work_order_steps",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("work_order_id", big_id, nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name="fk_work_order_steps_work_order_id_work_orders",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_work_order_steps"),
    )
    op.create_index("ix_work_order_steps_work_order_id", "work_order_steps", ["work_order_id"])
    op.create_table(
        "revisit_samples",
        sa.Column("id", big_id, autoincrement=True, nullable=False),
        sa.Column("drawn_at", ts, nullable=False),
        sa.Column("drawn_by", sa.String(200), nullable=False),
        sa.Column("period_from", ts, nullable=False),
        sa.Column("period_to", ts, nullable=False),
        sa.Column("percent", sa.SmallInteger(), nullable=False),
        sa.Column("seed", sa.String(40), nullable=False),
        sa.Column("population", sa.Text(), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_revisit_samples"),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """As migration 0001: the database refuses UPDATE and DELETE (and TRUNCATE)."""
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:  # hcp_append_only() is migration 0001's function
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
    op.drop_table("revisit_samples")
    op.drop_table("work_order_steps")
    op.drop_table("work_orders")
    op.drop_table("user_sessions")
    op.drop_table("user_departments")
    op.drop_table("users")
