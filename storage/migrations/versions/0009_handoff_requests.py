"""Hand-off requests: the person's message that asked for a person (/human, or in words) and
started a hold is marked, so the insights count a request nobody of the team answered.

Revision ID: 0009_handoff_requests
Revises: 0008_knowledge_vectors
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_handoff_requests"
down_revision: str | None = "0008_knowledge_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: no table rebuild, so SQLite's search triggers stay.
    op.add_column("log_messages", sa.Column("handoff", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("log_messages", "handoff")
