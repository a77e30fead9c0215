"""People just deleted: the log writer refuses their turns that were in flight.

Revision ID: 0003_erasures
Revises: 0002_guard
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_erasures"
down_revision: str | None = "0002_guard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "log_erasures",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_log_erasures_person", "log_erasures", ["platform", "person"])


def downgrade() -> None:
    op.drop_index("ix_log_erasures_person", table_name="log_erasures")
    op.drop_table("log_erasures")
