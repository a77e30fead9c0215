"""Reading the conversation log for the admin console: the filtered, searched and paged list of
conversations, a thread, an image, and the rows of an export.

Full-text search matches substrings in any script (Thai, Lao, Khmer, Burmese and Chinese have no
spaces between words, so word-based `to_tsvector` would miss them):

- PostgreSQL: `ILIKE '%word%'` for each word, served by a `pg_trgm` GIN index on the text.
- SQLite: an FTS5 table with the `trigram` tokenizer (kept in step by triggers), queried with
  `MATCH`; words shorter than three characters fall back to `LIKE` on the messages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, text, union
from sqlalchemy.orm import Session, aliased

from bot.kernel.messages import ConversationKey, Platform
from storage.log.engine import LogDatabase
from storage.log.models import (
    FLAGGED_LABELS,
    Conversation,
    LogAudio,
    LogImage,
    LogMessage,
    Rating,
)

#: SQLite's trigram tokenizer indexes substrings of three characters or more.
_TRIGRAM = 3
_WORD = re.compile(r'"([^"]+)"|(\S+)')

#: The fields of an exported message, in order (`LogQueries.export_rows`).
EXPORT_FIELDS = (
    "conversation_id", "platform", "bot_id", "chat_id", "user_id", "user_name", "message_id",
    "direction", "created_at", "language", "text", "model", "latency_ms", "prompt_tokens",
    "completion_tokens", "error", "platform_message_id", "images", "guard_label",
    "guard_categories",
)


def search_words(query: str) -> list[str]:
    """The words of a search, `"quoted phrases"` kept whole; at most eight."""
    words = [(m.group(1) or m.group(2)).strip() for m in _WORD.finditer(query)]
    return [w for w in words if w][:8]


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
    #: Only conversations with a message the guard flagged (or a blocked person's).
    flagged: bool = False
    #: Only conversations with an answer rated this way (+1 👍, -1 👎); None: any.
    rated: int | None = None

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

    @classmethod
    def of(cls, c: Conversation, last_text: str = "", last_direction: str = "") -> ConversationRow:
        return cls(id=c.id, platform=c.platform, bot_id=c.bot_id, chat_id=c.chat_id,
                   user_id=c.user_id, user_name=c.user_name, language=c.language,
                   first_message_at=c.first_message_at, last_message_at=c.last_message_at,
                   message_count=c.message_count, last_text=last_text,
                   last_direction=last_direction)


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
    guard_label: str | None = None
    guard_categories: str | None = None
    guard_latency_ms: int | None = None
    guard_withheld: str | None = None
    #: Set on an "in" row the person spoke: what the recogniser heard.
    transcript: str | None = None
    #: Kept voice notes (ASR_KEEP_AUDIO), for the console's player.
    audio_ids: tuple[int, ...] = ()
    #: An "out" row: the knowledge passages its answer was given (JSON, see LogMessage).
    knowledge_passages: str | None = None
    #: An "out" row: the person's rating of the answer (+1, -1; 0: none) and how it came.
    rating: int = 0
    rating_source: str | None = None

    @property
    def sources(self) -> list[dict[str, Any]]:
        """The knowledge passages, decoded ([] when none or unreadable)."""
        if not self.knowledge_passages:
            return []
        try:
            found = json.loads(self.knowledge_passages)
        except ValueError:
            return []
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []

    @property
    def spoken(self) -> bool:
        return self.transcript is not None

    @property
    def flagged(self) -> bool:
        return self.guard_label in FLAGGED_LABELS


@dataclass(frozen=True)
class Thread:
    conversation: ConversationRow
    messages: list[MessageRow]
    #: Set when older messages exist: pass it as `before` to get them.
    older_than: int | None = None


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


class LogQueries(LogDatabase):
    """The read side of `ConversationLog`."""

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
        if flt.flagged:
            conditions.append(Conversation.id.in_(
                select(LogMessage.conversation_id)
                .where(LogMessage.guard_label.in_(FLAGGED_LABELS))))
        if flt.rated in (-1, 1):
            conditions.append(Conversation.id.in_(
                select(Rating.conversation_id).where(Rating.rating == flt.rated)))
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
            rows = [ConversationRow.of(c, *last.get(c.id, ("", ""))) for c in conversations]
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
            return ConversationRow.of(found) if found is not None else None

    def conversation_of(self, key: ConversationKey) -> ConversationRow | None:
        """The conversation of `key` (the console's list of hand-offs links to it)."""
        with self._sessions() as session:
            found = session.scalars(select(Conversation).where(
                Conversation.platform == key.platform.value, Conversation.bot_id == key.bot_id,
                Conversation.chat_id == key.chat_id, Conversation.user_id == key.user_id)
            ).first()
            return ConversationRow.of(found) if found is not None else None

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
            ratings: dict[int, tuple[int, str]] = {}
            answers = [m.id for m in messages if m.direction == "out"]
            if answers:
                ratings = {message_id: (value, source) for message_id, value, source in
                           session.execute(select(Rating.message_id, Rating.rating,
                                                  Rating.source)
                                           .where(Rating.message_id.in_(answers)))}
            audio: dict[int, list[int]] = {}
            spoken = [m.id for m in messages if m.transcript is not None]
            if spoken:
                for audio_id, message_id in session.execute(
                        select(LogAudio.id, LogAudio.message_id)
                        .where(LogAudio.message_id.in_(spoken))
                        .order_by(LogAudio.message_id, LogAudio.position, LogAudio.id)):
                    audio.setdefault(message_id, []).append(audio_id)
            rows = [MessageRow(id=m.id, direction=m.direction, text=m.text,
                               created_at=m.created_at, language=m.language, model=m.model,
                               latency_ms=m.latency_ms, prompt_tokens=m.prompt_tokens,
                               completion_tokens=m.completion_tokens, error=m.error,
                               platform_message_id=m.platform_message_id,
                               image_ids=tuple(images.get(m.id, ())),
                               guard_label=m.guard_label, guard_categories=m.guard_categories,
                               guard_latency_ms=m.guard_latency_ms,
                               guard_withheld=m.guard_withheld, transcript=m.transcript,
                               audio_ids=tuple(audio.get(m.id, ())),
                               knowledge_passages=m.knowledge_passages,
                               rating=ratings.get(m.id, (0, None))[0],
                               rating_source=ratings.get(m.id, (0, None))[1])
                    for m in reversed(messages)]
            return Thread(conversation=ConversationRow.of(found), messages=rows,
                          older_than=rows[0].id if more and rows else None)

    def image(self, image_id: int) -> tuple[bytes, str] | None:
        with self._sessions() as session:
            found = session.get(LogImage, image_id)
            return (found.data, found.mime_type) if found is not None else None

    def audio(self, audio_id: int) -> tuple[bytes, str] | None:
        """A kept voice note and its MIME type."""
        with self._sessions() as session:
            found = session.get(LogAudio, audio_id)
            return (found.data, found.mime_type) if found is not None else None

    def export_rows(self, flt: ConversationFilter | None = None, *,
                    conversation_id: int | None = None,
                    batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every message of the selected conversations as a dict of `EXPORT_FIELDS`,
        conversation by conversation, oldest first; fetched `batch` rows at a time, so a large
        export never sits in memory. The console writes them as CSV or JSONL
        (`bot.admin.export`)."""
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
                        LogMessage.platform_message_id, image_count, LogMessage.guard_label,
                        LogMessage.guard_categories)
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
