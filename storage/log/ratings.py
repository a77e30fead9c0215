"""Ratings of answers: a person's 👍/👎 (a button under the answer, or a reaction on one of its
messages), stored against the answer's log row, one per answer; and the rated pairs exported
for evaluating the model.

    rate            store, replace or remove a rating; None when the answer is not in the log
                    (unknown, erased, expired): the caller ignores it silently
    rated_pairs     the rated answers with the person's words before them, no personal data
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from bot.kernel.messages import ConversationKey
from storage.log.engine import LogDatabase
from storage.log.models import AnswerPart, Conversation, LogMessage, Rating, utcnow

#: The fields of a rated pair, in order (JSONL: one object a line).
RATING_FIELDS = ("prompt", "answer", "language", "rating", "source", "platform", "time")


@dataclass(frozen=True, slots=True)
class Rated:
    """What `rate` did: the answer's row, and the rating now kept (0: none)."""

    message_id: int
    value: int


class LogRatings(LogDatabase):
    """The ratings side of `ConversationLog`."""

    def rate(self, key: ConversationKey, value: int, source: str, *, turn_id: str | None = None,
             platform_message_id: str | None = None) -> Rated | None:
        """Rate the answer of `turn_id` (a button) or the answer sent as `platform_message_id`
        (a reaction) in `key`'s conversation: +1 or -1 replaces any earlier rating, 0 removes
        it. None when no such answer is logged (unknown, erased, expired)."""
        if value not in (-1, 0, 1) or not (turn_id or platform_message_id):
            return None
        for _attempt in range(2):  # a concurrent first rating of the same answer: once more
            try:
                return self._rate(key, value, source, turn_id, platform_message_id)
            except IntegrityError:
                continue
        return None

    def _rate(self, key: ConversationKey, value: int, source: str, turn_id: str | None,
              platform_message_id: str | None) -> Rated | None:
        with self._writes.begin() as session:
            conversation = session.scalar(select(Conversation.id).where(
                Conversation.platform == key.platform.value, Conversation.bot_id == key.bot_id,
                Conversation.chat_id == key.chat_id, Conversation.user_id == key.user_id))
            if conversation is None:
                return None
            answer: Any = None
            if turn_id:
                answer = session.execute(select(LogMessage.id, LogMessage.language).where(
                    LogMessage.conversation_id == conversation, LogMessage.direction == "out",
                    LogMessage.turn_id == turn_id[:64])).first()
            if answer is None and platform_message_id:
                answer = session.execute(
                    select(LogMessage.id, LogMessage.language)
                    .join(AnswerPart, AnswerPart.message_id == LogMessage.id)
                    .where(AnswerPart.conversation_id == conversation,
                           AnswerPart.platform_message_id == platform_message_id[:256])
                    .limit(1)).first()
            if answer is None:
                return None
            message_id, language = answer
            if value == 0:
                session.execute(delete(Rating).where(Rating.message_id == message_id))
                return Rated(message_id, 0)
            now = utcnow()
            found = session.scalar(select(Rating).where(Rating.message_id == message_id))
            if found is None:
                session.add(Rating(message_id=message_id, conversation_id=conversation,
                                   rating=value, source=source[:16],
                                   platform=key.platform.value, language=language,
                                   created_at=now, updated_at=now))
            else:
                found.rating, found.source, found.updated_at = value, source[:16], now
            return Rated(message_id, value)

    def rating_of(self, message_id: int) -> int:
        """The rating kept on an answer's row (0: none)."""
        with self._sessions() as session:
            return int(session.scalar(select(Rating.rating).where(
                Rating.message_id == message_id)) or 0)

    def rated_pairs(self, since: dt.datetime | None = None,
                    until: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every rated answer with the person's words of its turn (the "in" row of the same
        turn id, else the nearest before it), oldest first: prompt, answer, language, rating,
        source, platform, time. No ids, names or phone numbers."""
        where = []
        if since is not None:
            where.append(Rating.updated_at >= since)
        if until is not None:
            where.append(Rating.updated_at < until)
        # The person's words by correlated subqueries (SQLite resolves the outer row in their
        # WHERE, not in an ORDER BY), so the whole export is one statement.
        asked = aliased(LogMessage)

        def last_asked(*extra: Any) -> Any:
            return (select(asked.text)
                    .where(asked.conversation_id == LogMessage.conversation_id,
                           asked.direction == "in", asked.id < LogMessage.id, *extra)
                    .order_by(asked.id.desc()).limit(1)
                    .correlate(LogMessage).scalar_subquery())

        prompt = func.coalesce(last_asked(asked.turn_id == LogMessage.turn_id), last_asked())
        query = (select(Rating, LogMessage, prompt)
                 .join(LogMessage, LogMessage.id == Rating.message_id)
                 .where(and_(True, *where)).order_by(Rating.id))
        with self._sessions() as session:
            for rating, answer, words in session.execute(query).tuples().yield_per(500):
                yield {"prompt": words or "", "answer": answer.text,
                       "language": rating.language or answer.language,
                       "rating": rating.rating, "source": rating.source,
                       "platform": rating.platform,
                       "time": rating.updated_at.isoformat(timespec="seconds")}
