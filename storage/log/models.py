"""The conversation log's tables, as SQLAlchemy 2 ORM models.

    log_conversations   one row a ConversationKey (platform, bot, chat, user): name, language,
                        first/last message time, message count
    log_messages        one row a side of a turn: direction "in" (the person) or "out" (the bot)
    log_images          the thumbnails of an inbound message (JPEG bytes, a few KB each)
    log_audio           the voice notes of an inbound message, kept only with ASR_KEEP_AUDIO
    log_erasures        people just deleted (a hash of their id), so no turn writes them back
    log_answer_parts    the platform message id of every part an answer went out in
    ratings             a person's 👍/👎 on an answer (button or reaction), one per answer

A message row also keeps the guard's decision on its side of the turn (`guard_*` columns):
"in" rows the check of what the person sent, "out" rows the check of the answer.

The schema itself lives in the Alembic migrations (`storage/migrations/`); these models mirror
them (a test compares the two).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.kernel.messages import ConversationKey, Platform


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (naive UTC in SQLite, timestamptz in PostgreSQL)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit (and the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "log_conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    bot_id: Mapped[str] = mapped_column(String(128))
    chat_id: Mapped[str] = mapped_column(String(128))
    #: Empty for a group: the conversation is the whole group.
    user_id: Mapped[str] = mapped_column(String(128), default="")
    user_name: Mapped[str | None] = mapped_column(String(256))
    #: The reply language of the latest turn.
    language: Mapped[str | None] = mapped_column(String(16))
    first_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer, default=0)

    messages: Mapped[list[LogMessage]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True,
        order_by="LogMessage.id")

    __table_args__ = (
        UniqueConstraint("platform", "bot_id", "chat_id", "user_id",
                         name="uq_log_conversation_key"),
        Index("ix_log_conversations_last", "last_message_at", "id"),
        Index("ix_log_conversations_platform_last", "platform", "last_message_at"),
        Index("ix_log_conversations_language_last", "language", "last_message_at"),
        Index("ix_log_conversations_person", "platform", "user_id"),
    )

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(platform=Platform(self.platform), bot_id=self.bot_id,
                               chat_id=self.chat_id, user_id=self.user_id)


class LogMessage(Base):
    __tablename__ = "log_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("log_conversations.id", ondelete="CASCADE"))
    #: "in": the person wrote it; "out": the bot answered.
    direction: Mapped[str] = mapped_column(String(3))
    #: Who wrote an inbound message, when known (the person in a private chat).
    sender_id: Mapped[str | None] = mapped_column(String(128))
    #: Dedupes a redelivered turn: one "in" and one "out" row per (conversation, turn).
    turn_id: Mapped[str | None] = mapped_column(String(64))
    platform_message_id: Mapped[str | None] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(256))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: The guard's decision on this side of the turn ("in": the person's message, "out": the
    #: answer): safe, unsafe, controversial or error; "blocked" / "rate_limited" for messages
    #: the abuse controls held back. NULL: not checked.
    guard_label: Mapped[str | None] = mapped_column(String(16))
    #: The guard's categories, comma-separated, when it names them.
    guard_categories: Mapped[str | None] = mapped_column(String(256))
    guard_latency_ms: Mapped[int | None] = mapped_column(Integer)
    #: An "out" row whose answer the guard flagged: the answer that was not sent (the row's
    #: text is the refusal that was).
    guard_withheld: Mapped[str | None] = mapped_column(Text)
    #: An "in" row whose person spoke (a voice note): what the recogniser heard. The row's
    #: `text` is the whole turn (typed text and transcript together).
    transcript: Mapped[str | None] = mapped_column(Text)
    #: An "out" row: the knowledge passages put in the prompt, in order, as JSON
    #: [{"p": passage id, "d": document id, "t": title, "pg": page, "s": score}] (kept when
    #: the document is removed later).
    knowledge_passages: Mapped[str | None] = mapped_column(Text)
    #: An "in" row that asked for a person (/human, or in words) and so started a hold:
    #: "person". NULL otherwise (an admin's take-over shows in the operator's replies).
    handoff: Mapped[str | None] = mapped_column(String(8))

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    images: Mapped[list[LogImage]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="LogImage.position")
    audio: Mapped[list[LogAudio]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="LogAudio.position")

    __table_args__ = (
        Index("ix_log_messages_thread", "conversation_id", "created_at", "id"),
        Index("ix_log_messages_created", "created_at"),
        Index("ix_log_messages_sender", "sender_id"),
        Index("ix_log_messages_guard", "guard_label", "conversation_id"),
        UniqueConstraint("conversation_id", "turn_id", "direction", name="uq_log_messages_turn"),
    )


class LogImage(Base):
    __tablename__ = "log_images"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("log_messages.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    mime_type: Mapped[str] = mapped_column(String(32), default="image/jpeg")
    data: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[LogMessage] = relationship(back_populates="images")


class LogAudio(Base):
    """A voice note as the person sent it (OGG/Opus, M4A/AAC), kept only with ASR_KEEP_AUDIO."""

    __tablename__ = "log_audio"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("log_messages.id", ondelete="CASCADE"),
                                            index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    mime_type: Mapped[str] = mapped_column(String(64), default="audio/ogg")
    data: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[LogMessage] = relationship(back_populates="audio")


class AnswerPart(Base):
    """One message an answer ("out" row) went out in: a reaction names the message it is on."""

    __tablename__ = "log_answer_parts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("log_messages.id", ondelete="CASCADE"),
                                            index=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("log_conversations.id", ondelete="CASCADE"))
    platform_message_id: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ix_log_answer_parts_platform", "conversation_id",
                            "platform_message_id"),)


class Rating(Base):
    """A person's rating of one answer: +1 (👍) or -1 (👎), from a button or a reaction. One
    per answer (a second rating replaces the first); it goes with the answer (erasure,
    retention)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The answer's row ("out") in log_messages.
    message_id: Mapped[int] = mapped_column(ForeignKey("log_messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("log_conversations.id", ondelete="CASCADE"))
    #: +1 or -1.
    rating: Mapped[int] = mapped_column(SmallInteger)
    #: "button" or "reaction".
    source: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(16))
    #: The answer's language.
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("message_id", name="uq_ratings_message"),
        CheckConstraint("rating IN (-1, 1)", name="ck_ratings_rating"),
        Index("ix_ratings_conversation", "conversation_id", "rating"),
        Index("ix_ratings_created", "created_at"),
    )


class ErasedPerson(Base):
    """A person deleted from the log: the writer refuses turns of theirs received before
    `erased_at` (a turn in flight during the deletion cannot write them back). Kept a day."""

    __tablename__ = "log_erasures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the person's user id (hex): the id itself is not kept.
    person: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_log_erasures_person", "platform", "person"),)


class KnowledgeDocument(Base):
    """A document the operator added to the knowledge base (operator content, not personal
    data: retention and erasure leave it alone)."""

    __tablename__ = "knowledge_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    filename: Mapped[str | None] = mapped_column(String(512))
    mime_type: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer)
    passage_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: "cli" or the console admin's name.
    added_by: Mapped[str] = mapped_column(String(64))


class KnowledgePassage(Base):
    __tablename__ = "knowledge_passages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text)
    #: Its token count (BM25's document length).
    length: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("document_id", "position",
                                       name="uq_knowledge_passage_position"),)


class KnowledgePosting(Base):
    """A term of a passage and how often it occurs there (`bot.kernel.tokens`)."""

    __tablename__ = "knowledge_postings"

    term: Mapped[str] = mapped_column(String(80), primary_key=True)
    passage_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_passages.id", ondelete="CASCADE"), primary_key=True, index=True)
    tf: Mapped[int] = mapped_column(Integer)


class KnowledgeVector(Base):
    """A passage's embedding (KNOWLEDGE_EMBEDDING_MODEL): float32 bytes, L2-normalised, with
    the model that made it (another model's vectors are made again by `reindex`)."""

    __tablename__ = "knowledge_vectors"

    passage_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_passages.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(512))
    dims: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class KnowledgeTerm(Base):
    """How many passages hold a term (BM25's document frequency), kept on add and remove."""

    __tablename__ = "knowledge_terms"

    term: Mapped[str] = mapped_column(String(80), primary_key=True)
    df: Mapped[int] = mapped_column(Integer)


def person_digest(user_id: str) -> str:
    """What `ErasedPerson.person` keeps of a user id."""
    return hashlib.sha256(user_id.encode()).hexdigest()


#: Guard labels that mark a message for review in the console (`ConversationFilter.flagged`).
FLAGGED_LABELS = ("unsafe", "controversial", "blocked")
