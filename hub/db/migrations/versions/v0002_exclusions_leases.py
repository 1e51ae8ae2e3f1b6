"""Rating exclusions (a verification's 误评/恶意 outcome) and job leases.

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


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("rating_exclusions")
