"""The conversation log: conversations, messages, image thumbnails, and full-text search.

Search indexes differ by backend (both match substrings in any script, Thai included):
PostgreSQL gets a pg_trgm GIN index on the message text (serving ILIKE '%word%'); SQLite gets an
FTS5 table with the trigram tokenizer, kept in step with log_messages by triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-02
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.log.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_conversations",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("bot_id", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(256), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("first_message_at", UTCDateTime(), nullable=False),
        sa.Column("last_message_at", UTCDateTime(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("platform", "bot_id", "chat_id", "user_id",
                            name="uq_log_conversation_key"),
    )
    op.create_index("ix_log_conversations_last", "log_conversations",
                    ["last_message_at", "id"])
    op.create_index("ix_log_conversations_platform_last", "log_conversations",
                    ["platform", "last_message_at"])
    op.create_index("ix_log_conversations_language_last", "log_conversations",
                    ["language", "last_message_at"])
    op.create_index("ix_log_conversations_person", "log_conversations", ["platform", "user_id"])

    op.create_table(
        "log_messages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("conversation_id", BigId,
                  sa.ForeignKey("log_conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("sender_id", sa.String(128), nullable=True),
        sa.Column("turn_id", sa.String(64), nullable=True),
        sa.Column("platform_message_id", sa.String(256), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("conversation_id", "turn_id", "direction",
                            name="uq_log_messages_turn"),
    )
    op.create_index("ix_log_messages_thread", "log_messages",
                    ["conversation_id", "created_at", "id"])
    op.create_index("ix_log_messages_created", "log_messages", ["created_at"])
    op.create_index("ix_log_messages_sender", "log_messages", ["sender_id"])

    op.create_table(
        "log_images",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("message_id", BigId, sa.ForeignKey("log_messages.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mime_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_log_images_message_id", "log_images", ["message_id"])

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _postgresql_search()
    elif dialect == "sqlite":
        _sqlite_search()


def _postgresql_search() -> None:
    bind = op.get_bind()
    # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. Without
    # it search still works (a sequential ILIKE scan), only slower on a large log.
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        savepoint.commit()
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm unavailable (%s): message search will not be indexed", exc.orig)
        return
    op.execute("CREATE INDEX ix_log_messages_text_trgm ON log_messages "
               "USING gin (text gin_trgm_ops)")
    op.execute("CREATE INDEX ix_log_conversations_user_name_trgm ON log_conversations "
               "USING gin (user_name gin_trgm_ops)")


def _sqlite_search() -> None:
    op.execute("CREATE VIRTUAL TABLE log_messages_fts USING fts5("
               "text, content='log_messages', content_rowid='id', tokenize='trigram')")
    op.execute("""
        CREATE TRIGGER log_messages_fts_insert AFTER INSERT ON log_messages BEGIN
          INSERT INTO log_messages_fts(rowid, text) VALUES (new.id, new.text);
        END""")
    op.execute("""
        CREATE TRIGGER log_messages_fts_delete AFTER DELETE ON log_messages BEGIN
          INSERT INTO log_messages_fts(log_messages_fts, rowid, text)
          VALUES ('delete', old.id, old.text);
        END""")
    op.execute("""
        CREATE TRIGGER log_messages_fts_update AFTER UPDATE OF text ON log_messages BEGIN
          INSERT INTO log_messages_fts(log_messages_fts, rowid, text)
          VALUES ('delete', old.id, old.text);
          INSERT INTO log_messages_fts(rowid, text) VALUES (new.id, new.text);
        END""")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS log_messages_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS log_messages_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_log_messages_text_trgm")
        op.execute("DROP INDEX IF EXISTS ix_log_conversations_user_name_trgm")
    op.drop_table("log_images")
    op.drop_table("log_messages")
    op.drop_table("log_conversations")
