"""Per-day rating totals for the period reports (``rating_rollup``, hub.metrics.rollup), built
here from the ratings already stored; ingest keeps them from then on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERAGE_INDEX = (
    "finished_at",
    "dept_code",
    "cancelled_at",
    "first_rated_at",
    "first_active_rated_at",
)
# dimension → SQL of (k1, k2); as hub.metrics.rollup.ROLLUP_KEYS at this revision.
DIMENSIONS = {
    "department": ("''", "''"),
    "hall": ("hall_id", "''"),
    "window": ("hall_id", "coalesce(window_id, '')"),
    "staff": ("hall_id", "coalesce(staff_id, '')"),
    "item": ("coalesce(item_code, '')", "''"),
    "channel": ("channel", "''"),
}


def backfill_sql(dialect: str) -> list[str]:
    """One ``INSERT … SELECT … GROUP BY`` per dimension over every stored rating, into an
    empty ``rating_rollup`` (also run by tests/bench/bench_hub_metrics.py)."""
    if dialect == "postgresql":
        day = "to_char(rated_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
        real = "CASE WHEN rater_real_name THEN 1 ELSE 0 END"
    else:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (hub.db.types)
        # whole seconds: SQLite rounds fractions to milliseconds (23:59:59.9999 → next day)
        day = "date(substr(rated_at, 1, 19), '+8 hours')"
        real = "CASE WHEN rater_real_name = 1 THEN 1 ELSE 0 END"
    classes = (
        "CASE WHEN source = 'default_rule' THEN 1 ELSE 0 END, level, assess_number, "
        "CASE WHEN (flags & 1) != 0 THEN 1 ELSE 0 END, "
        f"CASE WHEN (flags & 2) != 0 THEN 1 ELSE 0 END, {real}"
    )
    out = []
    for dim, (k1, k2) in DIMENSIONS.items():
        group = ", ".join(k for k in (k1, k2) if k != "''")  # no constant in GROUP BY
        keys = f"{day}, coalesce(dept_code, ''), {group + ', ' if group else ''}{classes}"
        out.append(
            "INSERT INTO rating_rollup (day, dim, dept_code, k1, k2, is_default, level, "
            "assess_number, repeat, unsolicited, real_name, n) "
            f"SELECT {day}, '{dim}', coalesce(dept_code, ''), {k1}, {k2}, {classes}, count(*) "
            f"FROM ratings GROUP BY {keys}"
        )
    return out


def upgrade() -> None:
    small = sa.SmallInteger()
    op.create_table(
        "rating_rollup",
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("dept_code", sa.String(18), nullable=False),
        sa.Column("k1", sa.String(64), nullable=False),
        sa.Column("k2", sa.String(32), nullable=False),
        sa.Column("is_default", small, nullable=False),
        sa.Column("level", small, nullable=False),
        sa.Column("assess_number", small, nullable=False),
        sa.Column("repeat", small, nullable=False),
        sa.Column("unsolicited", small, nullable=False),
        sa.Column("real_name", small, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dim",  # first: a report reads one dimension over a range of days
            "day",
            "dept_code",
            "k1",
            "k2",
            "is_default",
            "level",
            "assess_number",
            "repeat",
            "unsolicited",
            "real_name",
        ),
        sqlite_with_rowid=False,
    )
    for statement in backfill_sql(op.get_bind().dialect.name):
        op.execute(statement)
    # Coverage per department from the index alone (measured in bench_hub_metrics).
    op.drop_index("ix_cases_finished_at", table_name="cases")
    op.create_index("ix_cases_coverage", "cases", list(COVERAGE_INDEX))


def downgrade() -> None:
    op.drop_index("ix_cases_coverage", table_name="cases")
    op.create_index("ix_cases_finished_at", "cases", ["finished_at"])
    op.drop_table("rating_rollup")
