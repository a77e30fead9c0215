"""Voice notes: the transcript of an inbound message, and its audio when ASR_KEEP_AUDIO is on.

Revision ID: 0004_voice
Revises: 0003_erasures
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_voice"
down_revision: str | None = "0003_erasures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    # Plain ADD COLUMN on both backends: no table rebuild, so SQLite's search triggers stay.
    op.add_column("log_messages", sa.Column("transcript", sa.Text(), nullable=True))
    op.create_table(
        "log_audio",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("message_id", big_id, sa.ForeignKey("log_messages.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mime_type", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_log_audio_message_id", "log_audio", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_log_audio_message_id", table_name="log_audio")
    op.drop_table("log_audio")
    op.drop_column("log_messages", "transcript")
