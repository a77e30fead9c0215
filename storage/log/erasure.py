"""The log's side of forgetting: the SQL that deletes everything logged of a person, and the
retention job that deletes messages older than `RETENTION_DAYS`.

A person is erased through `storage.erasure.Erasure.erase_person`, which runs `delete_person`
between the Redis tombstone and the deletion of their Redis keys; `delete_person` alone would
leave Redis holding them."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bot.kernel.messages import ConversationKey, Platform
from storage.log.engine import LogDatabase
from storage.log.models import (
    Conversation,
    ErasedPerson,
    LogAudio,
    LogImage,
    LogMessage,
    person_digest,
    utcnow,
)
from storage.log.queries import ConversationRow
from storage.log.writer import ERASURE_HOLD

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

    from bot.kernel.settings import Settings

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class DeletedPerson:
    conversations: list[ConversationKey] = field(default_factory=list)
    messages: int = 0


@dataclass(frozen=True)
class Purged:
    messages: int = 0
    conversations: int = 0


class LogErasure(LogDatabase):
    """The forgetting side of `ConversationLog`."""

    def person_conversations(self, platform: str | Platform,
                             user_id: str) -> list[ConversationRow]:
        """The person's own conversations (private chats) on a platform."""
        platform = Platform(platform).value
        with self._sessions() as session:
            found = session.scalars(select(Conversation).where(
                Conversation.platform == platform, Conversation.user_id == user_id)
                .order_by(Conversation.last_message_at.desc())).all()
            return [ConversationRow.of(c) for c in found]

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
        image), their own messages in group conversations (with the bot's answer when the turn
        held nobody else's message), and the name on those groups' rows (the last speaker's,
        possibly theirs). A turn of theirs still in flight is refused by the writer afterwards
        (`ErasedPerson`). Returns the conversation keys, for `storage.erasure.Erasure` to
        forget them in Redis too."""
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
            group_turns = {(c, t.split("/", 1)[0]) for c, t in session.execute(
                select(LogMessage.conversation_id, LogMessage.turn_id)
                .where(in_groups, LogMessage.turn_id.is_not(None))).tuples() if t}
            session.execute(delete(LogImage).where(
                LogImage.message_id.in_(select(LogMessage.id).where(gone))))
            session.execute(delete(LogAudio).where(
                LogAudio.message_id.in_(select(LogMessage.id).where(gone))))
            deleted = cast("CursorResult[Any]", session.execute(delete(LogMessage).where(gone)))
            answers = sum(_delete_lone_answer(session, c, t) for c, t in sorted(group_turns))
            session.execute(delete(Conversation).where(person)
                            .execution_options(synchronize_session=False))
            if groups:
                session.execute(update(Conversation).where(Conversation.id.in_(groups))
                                .values(user_name=None)
                                .execution_options(synchronize_session=False))
                _recount(session, Conversation.id.in_(groups))
            now = utcnow()
            session.execute(delete(ErasedPerson)
                            .where(ErasedPerson.erased_at < now - ERASURE_HOLD))
            session.add(ErasedPerson(platform=platform, person=person_digest(user_id),
                                   erased_at=now))
        return DeletedPerson(conversations=keys,
                             messages=int(deleted.rowcount or 0) + answers)

    def purge_older_than(self, days: float) -> Purged:
        """Delete messages (and images) older than `days`; conversations left empty go too."""
        if days <= 0:
            return Purged()
        cutoff = utcnow() - dt.timedelta(days=days)
        with self._writes.begin() as session:
            old = select(LogMessage.id).where(LogMessage.created_at < cutoff)
            session.execute(delete(LogImage).where(LogImage.message_id.in_(old)))
            session.execute(delete(LogAudio).where(LogAudio.message_id.in_(old)))
            deleted = cast("CursorResult[Any]", session.execute(
                delete(LogMessage).where(LogMessage.created_at < cutoff)))
            gone = _recount(session, Conversation.first_message_at < cutoff)
        return Purged(messages=int(deleted.rowcount or 0), conversations=gone)


def _delete_lone_answer(session: Session, conversation_id: int, turn_id: str) -> int:
    """Delete the bot's answer of a group turn whose every inbound row is gone (it answered
    the deleted person alone, and may quote them). Returns how many rows went."""
    others = session.scalar(select(func.count()).select_from(LogMessage).where(
        LogMessage.conversation_id == conversation_id, LogMessage.direction == "in",
        or_(LogMessage.turn_id == turn_id, LogMessage.turn_id.like(f"{turn_id}/%"))))
    if others:
        return 0
    gone = cast("CursorResult[Any]", session.execute(delete(LogMessage).where(
        LogMessage.conversation_id == conversation_id, LogMessage.direction == "out",
        LogMessage.turn_id == turn_id)))
    return int(gone.rowcount or 0)


def _recount(session: Session, touched: Any) -> int:
    """Refresh the counts and times of the `touched` conversations, which lost messages; delete
    those left empty. Returns how many were deleted."""
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


def purge_expired(settings: Settings) -> Purged:
    """Apply RETENTION_DAYS (0 keeps everything): the job Celery beat runs daily."""
    days = settings.retention_days
    if days <= 0:
        return Purged()
    erasure = LogErasure(settings.database_url)
    try:
        purged = erasure.purge_older_than(days)
    finally:
        erasure.close()
    log.info("retention: %d message(s) and %d conversation(s) older than %d days deleted",
             purged.messages, purged.conversations, days)
    return purged
