"""Writing turns to the conversation log: one `TurnRecord` a turn, both sides in one
transaction, at most once per `turn_id`, never raising into the reply path."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from bot.kernel.messages import ConversationKey, InboundMessage
from storage.log.engine import LogDatabase
from storage.log.models import (
    AnswerPart,
    Conversation,
    ErasedPerson,
    LogAudio,
    LogImage,
    LogMessage,
    person_digest,
    utcnow,
)

log = logging.getLogger(__name__)

#: How long a deletion keeps refusing the person's turns still in flight (far above any turn).
ERASURE_HOLD = dt.timedelta(days=1)

_MAX_TEXT = 100_000
_MAX_ERROR = 10_000
_MAX_FIELD = {"platform_message_id": 256, "model": 256, "language": 16, "user_name": 256}


@dataclass(frozen=True, slots=True)
class GuardRecord:
    """A guard's decision on one side of a turn (or the abuse control that held it back)."""

    label: str
    categories: tuple[str, ...] = ()
    latency_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRecord:
    """One turn as the log keeps it: what the person sent and what the bot answered."""

    key: ConversationKey
    #: The person's messages of the turn (their ids, times, sender and name are kept).
    messages: tuple[InboundMessage, ...] = ()
    #: The person's side as one text; empty: the messages' texts joined.
    user_text: str = ""
    #: The answer (or the notices sent instead of one).
    reply_text: str = ""
    #: Empty: the newest name found on the messages.
    user_name: str | None = None
    #: Small JPEGs of the person's photos (`workers.images.make_thumbnail`).
    thumbnails: tuple[bytes, ...] = ()
    #: The reply language.
    language: str | None = None
    model: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    #: Dedupes a redelivered turn: with it, the turn is written once.
    turn_id: str | None = None
    #: When the answer went out; now when not given.
    answered_at: dt.datetime | None = None
    #: The guard's decisions on the person's side and on the answer.
    input_guard: GuardRecord | None = None
    output_guard: GuardRecord | None = None
    #: The answer the guard flagged and the person never saw (`reply_text` is the refusal).
    withheld: str | None = None
    #: What the person said in voice notes this turn (None: nothing was spoken).
    transcript: str | None = None
    #: The voice notes themselves as (bytes, MIME type), when ASR_KEEP_AUDIO keeps them.
    audio: tuple[tuple[bytes, str], ...] = ()
    #: The knowledge passages the answer was given, as JSON (`LogMessage.knowledge_passages`).
    knowledge: str | None = None
    #: The platform's ids of the messages the answer went out in (a reaction names one).
    answer_parts: tuple[str, ...] = ()
    #: The person's messages asked for a person (/human, or in words): a hold began.
    handoff: bool = False


def _clip(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    return value[:_MAX_FIELD[name]]


def _at(seconds: float | None) -> dt.datetime:
    if not seconds:
        return utcnow()
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _rows(record: TurnRecord) -> list[LogMessage]:
    """The turn's "in" and "out" rows (either may be missing), not yet in a conversation."""
    messages = record.messages
    now = record.answered_at or utcnow()
    received = min(min((_at(m.sent_at) for m in messages), default=now), now)
    language = _clip(record.language, "language")
    inbound_text = record.user_text or "\n".join(m.text for m in messages if m.text)
    rows: list[LogMessage] = []
    if messages or inbound_text or record.thumbnails or record.transcript is not None:
        sender = next((s for m in messages if (s := m.sender_id or m.key.user_id)), None)
        ids = ",".join(m.message_id for m in messages if m.message_id)
        inbound = LogMessage(direction="in", sender_id=_clip(sender, "user_name"),
                             turn_id=record.turn_id, platform_message_id=ids[:256] or None,
                             text=inbound_text[:_MAX_TEXT], language=language,
                             created_at=received)
        inbound.images = [LogImage(position=i, data=bytes(data))
                          for i, data in enumerate(record.thumbnails) if data]
        if record.transcript is not None:
            inbound.transcript = record.transcript[:_MAX_TEXT]
        inbound.audio = [LogAudio(position=i, data=bytes(data), mime_type=mime[:64])
                         for i, (data, mime) in enumerate(record.audio) if data]
        if record.handoff:
            inbound.handoff = "person"
        _guard(inbound, record.input_guard)
        rows.append(inbound)
        rows += _split_by_sender(record, inbound, now)
    if record.reply_text or record.error:
        latency = record.latency_ms
        rows.append(LogMessage(
            direction="out", turn_id=record.turn_id, text=record.reply_text[:_MAX_TEXT],
            language=language, model=_clip(record.model, "model"),
            latency_ms=None if latency is None else round(latency),
            prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
            error=(record.error or None) and record.error[:_MAX_ERROR],
            created_at=max(now, received),
            guard_withheld=(record.withheld or None) and record.withheld[:_MAX_TEXT],
            knowledge_passages=record.knowledge))
        _guard(rows[-1], record.output_guard)
    return rows


def _split_by_sender(record: TurnRecord, inbound: LogMessage,
                     now: dt.datetime) -> list[LogMessage]:
    """A group turn gathering several people's messages keeps one "in" row per sender, so that
    deleting one of them removes exactly what they wrote: `inbound` keeps the first sender's
    messages (and the turn's photos), the rows returned hold the others'."""
    by_sender: dict[str, list[InboundMessage]] = {}
    for message in record.messages:
        by_sender.setdefault(message.sender_id or message.key.user_id, []).append(message)
    if len(by_sender) < 2:
        return []
    first, *others = by_sender.values()
    inbound.text = "\n".join(m.text for m in first if m.text)[:_MAX_TEXT]
    inbound.platform_message_id = ",".join(m.message_id for m in first)[:256] or None
    rows = []
    for n, own in enumerate(others, 1):
        rows.append(LogMessage(
            direction="in", sender_id=_clip(own[0].sender_id or None, "user_name"),
            turn_id=None if record.turn_id is None else f"{record.turn_id}/{n}",
            platform_message_id=",".join(m.message_id for m in own)[:256] or None,
            text="\n".join(m.text for m in own if m.text)[:_MAX_TEXT],
            language=inbound.language,
            created_at=min(min(_at(m.sent_at) for m in own), now)))
    return rows


def _without_erased(session: Session, record: TurnRecord) -> TurnRecord | None:
    """The record without the people deleted after the turn's first message reached us (our
    clock, not the platform's): a turn in flight during a deletion cannot write them back, a
    message sent after it is logged. None when nobody is left: the private chat's person, or
    every sender of a group turn. A record without its messages (the deletion emptied the turn's
    in-flight list) counts as started before any deletion still on hold."""
    people = {record.key.user_id, *(m.sender_id for m in record.messages)} - {""}
    if not people:
        return record
    started = min((_at(m.received_at) for m in record.messages),
                  default=utcnow() - ERASURE_HOLD)
    erased = set(session.scalars(select(ErasedPerson.person).where(
        ErasedPerson.platform == record.key.platform.value,
        ErasedPerson.person.in_([person_digest(p) for p in people]),
        ErasedPerson.erased_at >= started)).all())
    gone = {p for p in people if person_digest(p) in erased}
    if not gone:
        return record
    kept = tuple(m for m in record.messages if m.sender_id not in gone)
    if record.key.user_id in gone or not kept:
        return None
    # The others' messages only: their own texts (not the turn's joined text), no photos (a
    # thumbnail does not say whose it was), the name of the newest sender left.
    return replace(record, messages=kept, user_text="", thumbnails=(), user_name=None)


def _guard(row: LogMessage, decision: GuardRecord | None) -> None:
    if decision is None:
        return
    row.guard_label = decision.label[:16]
    row.guard_categories = ", ".join(decision.categories)[:256] or None
    row.guard_latency_ms = decision.latency_ms


class LogWriter(LogDatabase):
    """The write side of `ConversationLog`."""

    def record_turn(self, record: TurnRecord) -> bool:
        """Log one turn — the person's side and the bot's answer — in one transaction.

        Never raises: a failure is logged and swallowed (returns False), so the log can never
        break a reply. With a `turn_id`, a redelivered turn is written once (returns True).
        """
        try:
            self._record_turn(record)
            return True
        except Exception:
            log.exception("conversation log: turn of %s not recorded", record.key.log_id())
            return False

    def _record_turn(self, original: TurnRecord) -> None:
        with self._writes.begin() as session:
            record = _without_erased(session, original)
            if record is None:
                log.info("conversation log: turn not recorded: its person was deleted")
                return
            rows = _rows(record)
            if not rows:
                return
            user_name = record.user_name or next(
                (m.user_name for m in reversed(record.messages) if m.user_name), None)
            conversation = self._conversation(session, record.key)
            if record.turn_id is not None and session.scalar(
                    select(LogMessage.id).where(LogMessage.conversation_id == conversation.id,
                                                LogMessage.turn_id == record.turn_id).limit(1)):
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
            if record.language:
                conversation.language = _clip(record.language, "language")
            for row in rows:
                row.conversation_id = conversation.id
                session.add(row)
            answer = rows[-1] if rows[-1].direction == "out" else None
            if answer is not None and record.answer_parts:
                session.flush()
                session.add_all(AnswerPart(message_id=answer.id, conversation_id=conversation.id,
                                           platform_message_id=part[:256])
                                for part in dict.fromkeys(record.answer_parts) if part)

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
