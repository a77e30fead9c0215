"""Guard decisions stored with each side of a turn, and an index for the console's flagged filter.

Revision ID: 0002_guard
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_guard"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: no table rebuild, so SQLite's search triggers stay.
    op.add_column("log_messages", sa.Column("guard_label", sa.String(16), nullable=True))
    op.add_column("log_messages", sa.Column("guard_categories", sa.String(256), nullable=True))
    op.add_column("log_messages", sa.Column("guard_latency_ms", sa.Integer(), nullable=True))
    op.add_column("log_messages", sa.Column("guard_withheld", sa.Text(), nullable=True))
    op.create_index("ix_log_messages_guard", "log_messages", ["guard_label", "conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_log_messages_guard", table_name="log_messages")
    for column in ("guard_withheld", "guard_latency_ms", "guard_categories", "guard_label"):
        op.drop_column("log_messages", column)
