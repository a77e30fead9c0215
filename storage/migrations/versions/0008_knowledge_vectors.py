"""The knowledge base's passage vectors (KNOWLEDGE_EMBEDDING_MODEL): one per passage, float32,
with the model that made it; removed with their passage.

Revision ID: 0008_knowledge_vectors
Revises: 0007_ratings
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_knowledge_vectors"
down_revision: str | None = "0007_ratings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "knowledge_vectors",
        sa.Column("passage_id", big_id,
                  sa.ForeignKey("knowledge_passages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model", sa.String(512), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("knowledge_vectors")
