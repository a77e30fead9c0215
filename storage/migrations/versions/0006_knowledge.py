"""The knowledge base: documents, passages, postings and term counts; the passages an answer
used on its log row.

Revision ID: 0006_knowledge
Revises: 0004_voice
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_knowledge"
down_revision: str | None = "0004_voice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.add_column("log_messages", sa.Column("knowledge_passages", sa.Text(), nullable=True))
    op.create_table(
        "knowledge_documents",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("filename", sa.String(512), nullable=True),
        sa.Column("mime_type", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("passage_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "knowledge_passages",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("document_id", big_id,
                  sa.ForeignKey("knowledge_documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("section", sa.String(512), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.UniqueConstraint("document_id", "position", name="uq_knowledge_passage_position"),
    )
    op.create_index("ix_knowledge_passages_document_id", "knowledge_passages", ["document_id"])
    op.create_table(
        "knowledge_postings",
        sa.Column("term", sa.String(80), primary_key=True),
        sa.Column("passage_id", big_id,
                  sa.ForeignKey("knowledge_passages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tf", sa.Integer(), nullable=False),
    )
    op.create_index("ix_knowledge_postings_passage_id", "knowledge_postings", ["passage_id"])
    op.create_table(
        "knowledge_terms",
        sa.Column("term", sa.String(80), primary_key=True),
        sa.Column("df", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("knowledge_terms")
    op.drop_index("ix_knowledge_postings_passage_id", table_name="knowledge_postings")
    op.drop_table("knowledge_postings")
    op.drop_index("ix_knowledge_passages_document_id", table_name="knowledge_passages")
    op.drop_table("knowledge_passages")
    op.drop_table("knowledge_documents")
    op.drop_column("log_messages", "knowledge_passages")
