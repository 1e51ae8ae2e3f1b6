"""Rating exclusions (a verification's 误评/恶意 outcome), job leases, the metrics indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ts = sa.DateTime(timezone=True)
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rating_exclusions",
        sa.Column("rating_id", big_id, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("work_order_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("decided_at", ts, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('mistaken', 'malicious')", name="ck_rating_exclusions_outcome"
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"], ["ratings.id"], name="fk_rating_exclusions_rating_id_ratings"
        ),
        sa.PrimaryKeyConstraint("rating_id", name="pk_rating_exclusions"),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_leases"),
    )
    op.drop_index(REPLACED_INDEX[0], table_name=REPLACED_INDEX[1])
    for name, (table, columns) in REPORT_INDEXES.items():
        op.create_index(name, table, list(columns))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("first_rated_at", ts, nullable=True))
        batch.add_column(sa.Column("first_active_rated_at", ts, nullable=True))
    _backfill_rated()


# A case rating: assess_number 1, not a repeat (0x01) or unsolicited (0x02) press (hub.metrics).
_COUNTED = "r.assess_number = 1 AND (r.flags & 3) = 0"


def _backfill_rated() -> None:
    """The case rating marks for ratings stored before this revision (ingest keeps them
    from now on): case rows for ratings whose case was never announced, then the marks."""
    op.execute(
        f"""
        INSERT INTO cases (hall_id, case_no, first_event_at)
        SELECT r.hall_id, r.case_no, MIN(r.rated_at) FROM ratings r
        WHERE r.case_no IS NOT NULL AND {_COUNTED}
          AND NOT EXISTS (SELECT 1 FROM cases c
                          WHERE c.hall_id = r.hall_id AND c.case_no = r.case_no)
        GROUP BY r.hall_id, r.case_no
        """
    )
    probe = (
        "SELECT MIN(r.rated_at) FROM ratings r WHERE r.hall_id = cases.hall_id "
        f"AND r.case_no = cases.case_no AND {_COUNTED}"
    )
    op.execute(
        f"UPDATE cases SET first_rated_at = ({probe}), "
        f"first_active_rated_at = ({probe} AND r.source <> 'default_rule')"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("first_active_rated_at")
        batch.drop_column("first_rated_at")
    for name, (table, _columns) in REPORT_INDEXES.items():
        op.drop_index(name, table_name=table)
    op.create_index(REPLACED_INDEX[0], REPLACED_INDEX[1], list(REPLACED_INDEX[2]))
    op.drop_table("job_leases")
    op.drop_table("rating_exclusions")


# The metrics indexes (hub.metrics; chosen by measurement in tests/bench/bench_hub_metrics.py,
# figures in docs/performance.md):
# - reports read one period of ratings: found by rated_at, with the columns the report counts
#   in the index itself, so the scan never touches the table (an index-only scan);
# - a case's case ratings by (hall_id, case_no) with the columns a probe tests, answered
#   from the index alone (coverage corrections for excluded ratings, per-case lookups); it
#   replaces 0001's (hall_id, case_no) index, which is its prefix;
# - coverage itself reads the marks ingest keeps on cases (first_rated_at,
#   first_active_rated_at; backfilled here), not the ratings;
# - the finished cases of a period are found by finished_at.
REPORT_INDEXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ix_ratings_report": (
        "ratings",
        ("rated_at", "dept_code", "level", "source", "assess_number", "flags", "rater_real_name"),
    ),
    "ix_ratings_case_probe": (
        "ratings",
        ("hall_id", "case_no", "assess_number", "flags", "source"),
    ),
    "ix_cases_finished_at": ("cases", ("finished_at",)),
}
REPLACED_INDEX = ("ix_ratings_hall_id_case_no", "ratings", ("hall_id", "case_no"))


def report_index_sql() -> list[str]:
    """The statements that create the metrics indexes (also run by the benchmark)."""
    return [
        f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"
        for name, (table, columns) in REPORT_INDEXES.items()
    ]
