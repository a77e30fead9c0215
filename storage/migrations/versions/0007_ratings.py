"""Ratings of answers (👍/👎 buttons and reactions), one per answer, and the platform message
ids of every part an answer was sent in (so a reaction finds its answer).

Revision ID: 0007_ratings
Revises: 0006_knowledge
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ratings"
down_revision: str | None = "0006_knowledge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "ratings",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("message_id", big_id,
                  sa.ForeignKey("log_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", big_id,
                  sa.ForeignKey("log_conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_id", name="uq_ratings_message"),
        sa.CheckConstraint("rating IN (-1, 1)", name="ck_ratings_rating"),
    )
    op.create_index("ix_ratings_conversation", "ratings", ["conversation_id", "rating"])
    op.create_index("ix_ratings_created", "ratings", ["created_at"])
    op.create_table(
        "log_answer_parts",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("message_id", big_id,
                  sa.ForeignKey("log_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", big_id,
                  sa.ForeignKey("log_conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("platform_message_id", sa.String(256), nullable=False),
    )
    op.create_index("ix_log_answer_parts_message_id", "log_answer_parts", ["message_id"])
    op.create_index("ix_log_answer_parts_platform", "log_answer_parts",
                    ["conversation_id", "platform_message_id"])


def downgrade() -> None:
    op.drop_index("ix_log_answer_parts_platform", table_name="log_answer_parts")
    op.drop_index("ix_log_answer_parts_message_id", table_name="log_answer_parts")
    op.drop_table("log_answer_parts")
    op.drop_index("ix_ratings_created", table_name="ratings")
    op.drop_index("ix_ratings_conversation", table_name="ratings")
    op.drop_table("ratings")
