"""The durable conversation log behind the admin console: SQLite by default, PostgreSQL in
production, through SQLAlchemy 2 and Alembic.

Redis forgets a conversation after `HISTORY_TTL_SECONDS`; this log keeps every turn — what the
person wrote (with small JPEG thumbnails of their photos) and what the bot answered, with the
model, latency and token counts — until `RETENTION_DAYS` have passed (0 keeps it forever) or an
operator deletes the person's data from the console.

    log_conversations   one row a ConversationKey (platform, bot, chat, user): name, language,
                        first/last message time, message count
    log_messages        one row a side of a turn: direction "in" (the person) or "out" (the bot)
    log_images          the thumbnails of an inbound message (JPEG bytes, a few KB each)

Full-text search matches substrings in any script (Thai, Lao, Khmer, Burmese and Chinese have no
spaces between words, so word-based `to_tsvector` would miss them):

- PostgreSQL: `ILIKE '%word%'` for each word, served by a `pg_trgm` GIN index on the text.
- SQLite: an FTS5 table with the `trigram` tokenizer (kept in step by triggers), queried with
  `MATCH`; words shorter than three characters fall back to `LIKE` on the messages.

The schema lives in Alembic migrations (`storage/migrations/`); `upgrade_database(url)` applies
them and `sealion-bot migrate` calls it. The models below mirror the migrations (a test checks).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    aliased,
    mapped_column,
    relationship,
    sessionmaker,
)

from bot.messages import ConversationKey, InboundMessage, Platform

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

    from bot.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: SQLite's trigram tokenizer indexes substrings of three characters or more.
_TRIGRAM = 3
_MAX_TEXT = 100_000
_MAX_FIELD = {"platform_message_id": 256, "model": 256, "language": 16, "user_name": 256}


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

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    images: Mapped[list[LogImage]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="LogImage.position")

    __table_args__ = (
        Index("ix_log_messages_thread", "conversation_id", "created_at", "id"),
        Index("ix_log_messages_created", "created_at"),
        Index("ix_log_messages_sender", "sender_id"),
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


# --- query results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationFilter:
    """What the console's list and the filtered export select."""

    platform: str | None = None
    language: str | None = None
    #: Conversations active on or after this moment (their last message is not older).
    since: dt.datetime | None = None
    #: ... and on or before this one (their first message is not newer).
    until: dt.datetime | None = None
    #: Words that one message of the conversation (or the person's name or id) must contain.
    search: str | None = None

    @property
    def words(self) -> list[str]:
        return search_words(self.search or "")


@dataclass(frozen=True)
class ConversationRow:
    id: int
    platform: str
    bot_id: str
    chat_id: str
    user_id: str
    user_name: str | None
    language: str | None
    first_message_at: dt.datetime
    last_message_at: dt.datetime
    message_count: int
    last_text: str = ""
    last_direction: str = ""

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(platform=Platform(self.platform), bot_id=self.bot_id,
                               chat_id=self.chat_id, user_id=self.user_id)


@dataclass(frozen=True)
class ConversationPage:
    rows: list[ConversationRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class MessageRow:
    id: int
    direction: str
    text: str
    created_at: dt.datetime
    language: str | None
    model: str | None
    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None
    platform_message_id: str | None
    image_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Thread:
    conversation: ConversationRow
    messages: list[MessageRow]
    #: Set when older messages exist: pass it as `before` to get them.
    older_than: int | None = None


@dataclass(frozen=True)
class DeletedPerson:
    conversations: list[ConversationKey] = field(default_factory=list)
    messages: int = 0


@dataclass(frozen=True)
class Purged:
    messages: int = 0
    conversations: int = 0


EXPORT_FIELDS = (
    "conversation_id", "platform", "bot_id", "chat_id", "user_id", "user_name", "message_id",
    "direction", "created_at", "language", "text", "model", "latency_ms", "prompt_tokens",
    "completion_tokens", "error", "platform_message_id", "images",
)


# --- helpers -----------------------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def redact_url(url: str) -> str:
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    _ensure_sqlite_dir(url)
    parsed = make_url(url)
    # Errors must not carry message text into the logs (bot/logs.py: no text at INFO or above).
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is off: `_sqlite_begin` below starts them.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if parsed.database and parsed.database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # A writer takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction
            # that reads, then writes, fails at once with "database is locked" when another
            # process wrote in between, whatever the busy timeout.
            write = connection.get_execution_options().get("sqlite_write")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 5)
    return create_engine(url, **kwargs)


_WORD = re.compile(r'"([^"]+)"|(\S+)')


def search_words(query: str) -> list[str]:
    """The words of a search, `"quoted phrases"` kept whole; at most eight."""
    words = [(m.group(1) or m.group(2)).strip() for m in _WORD.finditer(query)]
    return [w for w in words if w][:8]


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _clip(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    return value[:_MAX_FIELD[name]]


def _at(seconds: float | None) -> dt.datetime:
    if not seconds:
        return utcnow()
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _row(c: Conversation, last_text: str = "", last_direction: str = "") -> ConversationRow:
    return ConversationRow(id=c.id, platform=c.platform, bot_id=c.bot_id, chat_id=c.chat_id,
                           user_id=c.user_id, user_name=c.user_name, language=c.language,
                           first_message_at=c.first_message_at, last_message_at=c.last_message_at,
                           message_count=c.message_count, last_text=last_text,
                           last_direction=last_direction)


# --- the log -----------------------------------------------------------------------------------


class ConversationLog:
    """Writes turns and answers the console's questions. Thread-safe; one per process is enough."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = (url_or_engine if isinstance(url_or_engine, Engine)
                       else make_engine(url_or_engine))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.engine.execution_options(sqlite_write=True),
                                    expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()

    # --- writing --------------------------------------------------------------------------------

    def record_turn(
        self,
        key: ConversationKey,
        user_name: str | None,
        messages: Sequence[InboundMessage],
        user_text: str,
        image_thumbnails: Sequence[bytes],
        reply_text: str,
        language: str | None,
        model: str | None,
        latency_ms: float | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        error: str | None,
        *,
        turn_id: str | None = None,
        answered_at: dt.datetime | None = None,
    ) -> bool:
        """Log one turn — the person's side and the bot's answer — in one transaction.

        Never raises: a failure is logged and swallowed (returns False), so the log can never
        break a reply. With `turn_id`, a redelivered turn is written once (returns True).
        """
        try:
            self._record_turn(key, user_name, messages, user_text, image_thumbnails, reply_text,
                              language, model, latency_ms, prompt_tokens, completion_tokens,
                              error, turn_id, answered_at)
            return True
        except Exception:
            log.exception("conversation log: turn of %s not recorded", key.as_path())
            return False

    def _record_turn(self, key: ConversationKey, user_name: str | None,
                     messages: Sequence[InboundMessage], user_text: str,
                     image_thumbnails: Sequence[bytes], reply_text: str, language: str | None,
                     model: str | None, latency_ms: float | None,
                     prompt_tokens: int | None, completion_tokens: int | None,
                     error: str | None, turn_id: str | None,
                     answered_at: dt.datetime | None) -> None:
        now = answered_at or utcnow()
        received = min((_at(m.sent_at) for m in messages), default=now)
        received = min(received, now)
        if not user_name:
            user_name = next((m.user_name for m in reversed(messages) if m.user_name), None)
        inbound_text = user_text or "\n".join(m.text for m in messages if m.text)
        rows: list[LogMessage] = []
        if messages or inbound_text or image_thumbnails:
            sender = next((s for m in messages
                           if (s := getattr(m, "sender_id", None) or m.key.user_id)), None)
            ids = ",".join(m.message_id for m in messages if m.message_id)
            inbound = LogMessage(direction="in", sender_id=_clip(sender, "user_name"),
                                 turn_id=turn_id, platform_message_id=ids[:256] or None,
                                 text=inbound_text[:_MAX_TEXT],
                                 language=_clip(language, "language"), created_at=received)
            inbound.images = [LogImage(position=i, data=bytes(data))
                              for i, data in enumerate(image_thumbnails) if data]
            rows.append(inbound)
        if reply_text or error:
            rows.append(LogMessage(
                direction="out", turn_id=turn_id, text=(reply_text or "")[:_MAX_TEXT],
                language=_clip(language, "language"), model=_clip(model, "model"),
                latency_ms=None if latency_ms is None else round(latency_ms),
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                error=(error or None) and error[:10_000], created_at=max(now, received)))
        if not rows:
            return
        with self._writes.begin() as session:
            conversation = self._conversation(session, key)
            if turn_id is not None and session.scalar(
                    select(LogMessage.id).where(LogMessage.conversation_id == conversation.id,
                                                LogMessage.turn_id == turn_id).limit(1)):
                return
            if conversation.message_count == 0:
                conversation.first_message_at = rows[0].created_at
                conversation.last_message_at = rows[-1].created_at
            else:
                conversation.first_message_at = min(conversation.first_message_at,
                                                    rows[0].created_at)
                conversation.last_message_at = max(conversation.last_message_at,
                                                   rows[-1].created_at)
            conversation.message_count += len(rows)
            if user_name:
                conversation.user_name = _clip(user_name, "user_name")
            if language:
                conversation.language = _clip(language, "language")
            for row in rows:
                row.conversation_id = conversation.id
                session.add(row)

    def _conversation(self, session: Session, key: ConversationKey) -> Conversation:
        """The conversation's row, created when missing (safe against a concurrent insert)."""
        where = and_(Conversation.platform == key.platform.value,
                     Conversation.bot_id == key.bot_id, Conversation.chat_id == key.chat_id,
                     Conversation.user_id == key.user_id)
        found = session.scalars(select(Conversation).where(where).with_for_update()).first()
        if found is not None:
            return found
        now = utcnow()
        values = {"platform": key.platform.value, "bot_id": key.bot_id, "chat_id": key.chat_id,
                  "user_id": key.user_id, "first_message_at": now, "last_message_at": now,
                  "message_count": 0}
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(Conversation).values(**values).on_conflict_do_nothing())
        elif self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(Conversation).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - other backends are not supported, but try
            session.add(Conversation(**values))
            session.flush()
        return session.scalars(select(Conversation).where(where).with_for_update()).one()

    # --- reading --------------------------------------------------------------------------------

    def _message_match(self, words: list[str]) -> Any:
        """A condition on LogMessage: its text contains every word (case-insensitive)."""
        conditions = []
        fts_words = [w for w in words if len(w) >= _TRIGRAM]
        if self.dialect == "sqlite" and fts_words:
            query = " AND ".join(_fts_phrase(w) for w in fts_words)
            conditions.append(LogMessage.id.in_(
                select(text("rowid")).select_from(text("log_messages_fts"))
                .where(text("log_messages_fts MATCH :fts_query").bindparams(fts_query=query))))
            words = [w for w in words if len(w) < _TRIGRAM]
        for word in words:
            conditions.append(LogMessage.text.ilike(f"%{_like_escape(word)}%", escape="\\"))
        return and_(*conditions)

    def _conversation_conditions(self, flt: ConversationFilter) -> list[Any]:
        conditions: list[Any] = []
        if flt.platform:
            conditions.append(Conversation.platform == flt.platform)
        if flt.language:
            conditions.append(Conversation.language == flt.language)
        if flt.since:
            conditions.append(Conversation.last_message_at >= flt.since)
        if flt.until:
            conditions.append(Conversation.first_message_at <= flt.until)
        words = flt.words
        if words:
            # A union, not an OR: each half is planned on its own and uses its own index (an OR
            # with a subquery makes PostgreSQL scan every message).
            matching = select(LogMessage.conversation_id).where(self._message_match(words))
            other = aliased(Conversation)
            person = select(other.id).where(*[
                or_(other.user_name.ilike(f"%{_like_escape(w)}%", escape="\\"),
                    other.user_id == w, other.chat_id == w) for w in words]).correlate(None)
            conditions.append(Conversation.id.in_(union(matching, person)))
        return conditions

    def list_conversations(self, flt: ConversationFilter | None = None, *, page: int = 1,
                           per_page: int = 50) -> ConversationPage:
        """Newest activity first, with the last message's text of each row."""
        flt = flt or ConversationFilter()
        page = max(1, page)
        conditions = self._conversation_conditions(flt)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(Conversation)
                                   .where(*conditions)) or 0
            conversations = session.scalars(
                select(Conversation).where(*conditions)
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .offset((page - 1) * per_page).limit(per_page)).all()
            last = self._last_messages(session, [c.id for c in conversations])
            rows = [_row(c, *last.get(c.id, ("", ""))) for c in conversations]
        return ConversationPage(rows=rows, total=total, page=page, per_page=per_page)

    def _last_messages(self, session: Session, ids: list[int]) -> dict[int, tuple[str, str]]:
        if not ids:
            return {}
        newest = (select(func.max(LogMessage.id)).where(LogMessage.conversation_id.in_(ids))
                  .group_by(LogMessage.conversation_id))
        result = session.execute(
            select(LogMessage.conversation_id, func.substr(LogMessage.text, 1, 200),
                   LogMessage.direction, func.substr(LogMessage.error, 1, 120))
            .where(LogMessage.id.in_(newest)))
        return {cid: (snippet or (f"[error] {error}" if error else ""), direction)
                for cid, snippet, direction, error in result}

    def languages(self) -> list[str]:
        with self._sessions() as session:
            values = session.scalars(select(Conversation.language).distinct()
                                     .where(Conversation.language.is_not(None))).all()
        return sorted(v for v in values if v)

    def conversation(self, conversation_id: int) -> ConversationRow | None:
        with self._sessions() as session:
            found = session.get(Conversation, conversation_id)
            return _row(found) if found is not None else None

    def find_conversation(self, key: ConversationKey) -> ConversationRow | None:
        with self._sessions() as session:
            found = session.scalars(select(Conversation).where(
                Conversation.platform == key.platform.value, Conversation.bot_id == key.bot_id,
                Conversation.chat_id == key.chat_id, Conversation.user_id == key.user_id)).first()
            return _row(found) if found is not None else None

    def thread(self, conversation_id: int, *, limit: int = 200,
               before: int | None = None) -> Thread | None:
        """The newest `limit` messages (older than message id `before`), oldest first."""
        with self._sessions() as session:
            found = session.get(Conversation, conversation_id)
            if found is None:
                return None
            query = select(LogMessage).where(LogMessage.conversation_id == conversation_id)
            if before is not None:
                query = query.where(LogMessage.id < before)
            messages = list(session.scalars(
                query.order_by(LogMessage.created_at.desc(), LogMessage.id.desc())
                .limit(limit + 1)).all())
            more = len(messages) > limit
            messages = messages[:limit]
            images: dict[int, list[int]] = {}
            if messages:
                for image_id, message_id in session.execute(
                        select(LogImage.id, LogImage.message_id)
                        .where(LogImage.message_id.in_([m.id for m in messages]))
                        .order_by(LogImage.message_id, LogImage.position, LogImage.id)):
                    images.setdefault(message_id, []).append(image_id)
            rows = [MessageRow(id=m.id, direction=m.direction, text=m.text,
                               created_at=m.created_at, language=m.language, model=m.model,
                               latency_ms=m.latency_ms, prompt_tokens=m.prompt_tokens,
                               completion_tokens=m.completion_tokens, error=m.error,
                               platform_message_id=m.platform_message_id,
                               image_ids=tuple(images.get(m.id, ())))
                    for m in reversed(messages)]
            return Thread(conversation=_row(found), messages=rows,
                          older_than=rows[0].id if more and rows else None)

    def image(self, image_id: int) -> tuple[bytes, str] | None:
        with self._sessions() as session:
            found = session.get(LogImage, image_id)
            return (found.data, found.mime_type) if found is not None else None

    def export_rows(self, flt: ConversationFilter | None = None, *,
                    conversation_id: int | None = None,
                    batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every message of the selected conversations, conversation by conversation, oldest
        first; fetched `batch` rows at a time, so a large export never sits in memory."""
        if conversation_id is not None:
            conditions = [Conversation.id == conversation_id]
        else:
            conditions = self._conversation_conditions(flt or ConversationFilter())
        image_count = (select(func.count(LogImage.id))
                       .where(LogImage.message_id == LogMessage.id)
                       .correlate(LogMessage).scalar_subquery())
        query = (select(Conversation.id, Conversation.platform, Conversation.bot_id,
                        Conversation.chat_id, Conversation.user_id, Conversation.user_name,
                        LogMessage.id, LogMessage.direction, LogMessage.created_at,
                        LogMessage.language, LogMessage.text, LogMessage.model,
                        LogMessage.latency_ms, LogMessage.prompt_tokens,
                        LogMessage.completion_tokens, LogMessage.error,
                        LogMessage.platform_message_id, image_count)
                 .join(LogMessage, LogMessage.conversation_id == Conversation.id)
                 .where(*conditions)
                 .order_by(Conversation.id, LogMessage.created_at, LogMessage.id))
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=batch) \
                .execute(query)
            for values in result:
                row = dict(zip(EXPORT_FIELDS, values, strict=True))
                row["created_at"] = row["created_at"].isoformat()
                yield row

    def count_messages(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(LogMessage)) or 0

    # --- forgetting -----------------------------------------------------------------------------

    def person_conversations(self, platform: str | Platform,
                             user_id: str) -> list[ConversationRow]:
        """The person's own conversations (private chats) on a platform."""
        platform = Platform(platform).value
        with self._sessions() as session:
            found = session.scalars(select(Conversation).where(
                Conversation.platform == platform, Conversation.user_id == user_id)
                .order_by(Conversation.last_message_at.desc())).all()
            return [_row(c) for c in found]

    def person_group_messages(self, platform: str | Platform, user_id: str) -> int:
        """How many of the person's messages sit in shared (group) conversations."""
        platform = Platform(platform).value
        with self._sessions() as session:
            return session.scalar(
                select(func.count()).select_from(LogMessage)
                .join(Conversation, Conversation.id == LogMessage.conversation_id)
                .where(Conversation.platform == platform, Conversation.user_id != user_id,
                       LogMessage.sender_id == user_id)) or 0

    def delete_person(self, platform: str | Platform, user_id: str) -> DeletedPerson:
        """Delete everything logged of a person: their conversations (with every message and
        image) and their own messages in group conversations. Returns the conversation keys, for
        the caller to forget them in Redis too."""
        if not user_id:
            raise ValueError("a person's user id is required")
        platform = Platform(platform).value
        person = and_(Conversation.platform == platform, Conversation.user_id == user_id)
        own = select(Conversation.id).where(person)
        on_platform = select(Conversation.id).where(Conversation.platform == platform)
        in_groups = and_(LogMessage.sender_id == user_id,
                         LogMessage.conversation_id.in_(on_platform),
                         LogMessage.conversation_id.not_in(own))
        gone = or_(LogMessage.conversation_id.in_(own), in_groups)
        with self._writes.begin() as session:
            keys = [c.key for c in session.scalars(select(Conversation).where(person)).all()]
            groups = list(session.scalars(select(LogMessage.conversation_id).distinct()
                                          .where(in_groups)).all())
            session.execute(delete(LogImage).where(
                LogImage.message_id.in_(select(LogMessage.id).where(gone))))
            deleted = cast("CursorResult[Any]", session.execute(delete(LogMessage).where(gone)))
            session.execute(delete(Conversation).where(person)
                            .execution_options(synchronize_session=False))
            if groups:
                self._recount(session, Conversation.id.in_(groups))
        return DeletedPerson(conversations=keys, messages=int(deleted.rowcount or 0))

    def purge_older_than(self, days: float) -> Purged:
        """Delete messages (and images) older than `days`; conversations left empty go too."""
        if days <= 0:
            return Purged()
        cutoff = utcnow() - dt.timedelta(days=days)
        with self._writes.begin() as session:
            old = select(LogMessage.id).where(LogMessage.created_at < cutoff)
            session.execute(delete(LogImage).where(LogImage.message_id.in_(old)))
            deleted = cast("CursorResult[Any]", session.execute(
                delete(LogMessage).where(LogMessage.created_at < cutoff)))
            gone = self._recount(session, Conversation.first_message_at < cutoff)
        return Purged(messages=int(deleted.rowcount or 0), conversations=gone)

    def _recount(self, session: Session, touched: Any) -> int:
        """Refresh the counts and times of the `touched` conversations, which lost messages;
        delete those left empty. Returns how many were deleted."""
        empty = ~exists().where(LogMessage.conversation_id == Conversation.id)
        gone = cast("CursorResult[Any]", session.execute(
            delete(Conversation).where(touched, empty)
            .execution_options(synchronize_session=False)))

        def of_conversation(column: Any) -> Any:
            return (select(column).where(LogMessage.conversation_id == Conversation.id)
                    .scalar_subquery())

        session.execute(update(Conversation).where(touched).values(
            message_count=of_conversation(func.count(LogMessage.id)),
            first_message_at=of_conversation(func.min(LogMessage.created_at)),
            last_message_at=of_conversation(func.max(LogMessage.created_at)),
        ).execution_options(synchronize_session=False))
        return int(gone.rowcount or 0)


def make_thumbnail(image: bytes, max_side: int = 320, quality: int = 70) -> bytes:
    """A small JPEG of `image` for the log (a few KB); b"" when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.thumbnail((max_side, max_side))
            if picture.mode != "RGB":
                picture = picture.convert("RGB")
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=quality, optimize=True)
            return out.getvalue()
    except Exception as exc:  # noqa: BLE001 - any unreadable image: no thumbnail
        log.info("conversation log: no thumbnail (%s)", type(exc).__name__)
        return b""


# --- export formats ----------------------------------------------------------------------------


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """Neutralize spreadsheet formulas: a cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff".encode()  # Excel reads UTF-8 (Thai, Vietnamese...) only with a BOM
    writer.writerow(EXPORT_FIELDS)
    for n, row in enumerate(rows, 1):
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
        if n % 200 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# --- schema and retention ----------------------------------------------------------------------


def alembic_config(url: str) -> Any:
    """An Alembic config built in code (no alembic.ini needed) for `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Create or update the log's tables (Alembic `upgrade head`). Idempotent."""
    from alembic import command

    url = normalize_url(url)
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
    log.info("conversation log schema at %s is up to date", redact_url(url))


def purge_expired(settings: Settings) -> Purged:
    """Apply RETENTION_DAYS (0 keeps everything): the job Celery beat runs daily."""
    days = settings.retention_days
    if days <= 0:
        return Purged()
    conversation_log = ConversationLog(settings.database_url)
    try:
        purged = conversation_log.purge_older_than(days)
    finally:
        conversation_log.close()
    log.info("retention: %d message(s) and %d conversation(s) older than %d days deleted",
             purged.messages, purged.conversations, days)
    return purged
