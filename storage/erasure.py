"""Erasing a person everywhere: `Erasure.erase_person` is the one entry point (the console's
delete page calls it, and nothing else deletes a person).

    erasure = Erasure(redis_client, conversation_log, KeyBuilder(),
                      hold_seconds=erasure_hold_seconds(settings))
    erasure.preview(Platform.TELEGRAM, "501")       # what would go (the confirmation page)
    report = erasure.erase_person(Platform.TELEGRAM, "501")

`erase_person` works in the order that keeps a turn still in flight from writing the person
back:

1. the Redis tombstone (`KeyBuilder.erased`): from now on the turn's finish script
   (`ConversationStore.finish_turn`: history and language), `RedisHistory.append` and
   `save_image` refuse, atomically, anything of theirs that arrived before it;
2. the conversation log (`LogErasure.delete_person`, the SQL it runs): their conversations with
   every message, photo and voice note, their own messages in group conversations (with the
   bot's answer when it answered them alone), their name on those groups' rows; it leaves its
   own tombstone (`log_erasures`, a day), so the log's writer refuses a late turn of theirs;
3. every Redis key of their conversations, those the log knew and those only Redis knows
   (another bot, a conversation never logged):

   * every ``sealion:conv:{conversation}:*`` key: pending and in-flight messages, the turn lock
     (``turn``) and its lease (``owner``), history, photos, language, pin, busy notice, outbox;
   * the keys of the turn in flight: ``sealion:turn:{turn_id}:*`` (parts sent, partial answer,
     outcome, delivery lock) and ``sealion:lease:{lease}:*``;
   * the conversation's entry in the active set;
   * the person's rate-limit buckets on every bot of the platform, and the marks that they were
     told of a monthly pause (`workers.turn.budget`).

The Redis tombstone lives `erasure_hold_seconds` (longer than any turn can stay in flight,
redelivery included); meanwhile the person's private conversations keep no history. Group
conversations are keyed by the group, not by a person: their shared Redis history is not
rewritten (it expires after `HISTORY_TTL_SECONDS`); what the person wrote there is deleted from
the log.

A person known by several ids (WhatsApp: phone, business-scoped ids; `storage.identities`) is
erased by any of them: every alias is tombstoned, deleted from the log and from Redis, and the
identity map forgets them.

Retention (`RETENTION_DAYS`) is the log's own policy, not a person's erasure: it touches no
Redis key (Redis forgets by its TTLs) and lives with the log (`storage.log.purge_expired`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.settings import Settings
from storage.conversations import member
from storage.identities import IdentityMap
from storage.keys import KeyBuilder, glob_escape
from storage.log import ConversationRow, LogErasure

#: Scanning is done in pages of this many keys.
_SCAN_COUNT = 500


def erasure_hold_seconds(settings: Settings) -> int:
    """How long a tombstone must live: a turn's task may be redelivered after the visibility
    timeout and then run for the turn's timeout."""
    return settings.celery_visibility_timeout + settings.turn_timeout_seconds


@dataclass(frozen=True)
class ErasurePreview:
    """What `erase_person` would delete (the console's confirmation page)."""

    #: The person's conversations in the log, newest first.
    conversations: list[ConversationRow]
    #: Their conversations that only Redis still knows.
    redis_only: list[ConversationKey]
    #: How many of their messages sit in group conversations of the log.
    group_messages: int
    #: Their name, as the log last saw it.
    name: str | None


@dataclass(frozen=True)
class ErasureReport:
    """What `erase_person` deleted."""

    #: Every conversation of theirs that was forgotten (the log's and Redis's).
    conversations: tuple[ConversationKey, ...]
    #: Rows deleted from the log (their messages, and answers to them alone).
    messages: int
    #: Keys deleted from Redis.
    redis_keys: int


class Erasure:
    """Deletes a person from Redis and from the conversation log (see the module docstring).

    `log` is the log's forgetting side (`ConversationLog` is one); `hold_seconds` is how long
    the Redis tombstone lives (`erasure_hold_seconds`)."""

    def __init__(self, client: redis.Redis, log: LogErasure, keys: KeyBuilder, *,
                 hold_seconds: int) -> None:
        self._redis = client
        self._log = log
        self._keys = keys
        self._hold_seconds = max(1, hold_seconds)
        self._identities = IdentityMap(client, keys)

    def aliases(self, platform: Platform, user_id: str) -> list[str]:
        """Every id of the person `user_id` names, sorted (itself alone for most platforms)."""
        return sorted(self._identities.aliases(platform, user_id))

    def preview(self, platform: Platform, user_id: str) -> ErasurePreview:
        ids = self.aliases(platform, user_id)
        conversations = sorted(
            {c.key: c for i in ids for c in self._log.person_conversations(platform, i)}.values(),
            key=lambda c: c.last_message_at, reverse=True)
        logged = {c.key for c in conversations}
        return ErasurePreview(
            conversations=conversations,
            redis_only=[k for i in ids for k in self._redis_conversations(platform, i)
                        if k not in logged],
            group_messages=sum(self._log.person_group_messages(platform, i) for i in ids),
            name=next((c.user_name for c in conversations if c.user_name), None))

    def erase_person(self, platform: Platform, user_id: str) -> ErasureReport:
        """Everything kept of a person on `platform`: tombstone, log, then every Redis key.
        Raises ValueError for an empty user id (it would match everyone's keys)."""
        if not user_id:
            raise ValueError("a person's user id is required")
        ids = self.aliases(platform, user_id)
        for person in ids:
            self._redis.set(self._keys.erased(platform, person), str(time.time()),
                            ex=self._hold_seconds)
        found: set[ConversationKey] = set()
        messages = 0
        for person in ids:
            deleted = self._log.delete_person(platform, person)
            messages += deleted.messages
            found.update(deleted.conversations, self._redis_conversations(platform, person))
        conversations = tuple(sorted(found, key=lambda k: k.as_path()))
        removed = sum(self._forget_conversation(key) for key in conversations)
        for person in ids:
            for pattern in (*self._keys.rate_patterns(platform, person),
                            self._keys.paused_patterns(platform, person)):
                removed += self._delete_matching(pattern)
        self._identities.forget(platform, ids)
        return ErasureReport(conversations=conversations, messages=messages,
                             redis_keys=removed)

    def is_erased(self, platform: Platform, user_id: str) -> bool:
        """Whether the person was deleted within the tombstone's lifetime."""
        return bool(user_id) and bool(self._redis.exists(self._keys.erased(platform, user_id)))

    def _redis_conversations(self, platform: Platform, user_id: str) -> list[ConversationKey]:
        """The person's conversations that Redis still knows, found by their keys."""
        found: set[ConversationKey] = set()
        for raw in self._redis.scan_iter(match=self._keys.person_pattern(platform, user_id),
                                         count=_SCAN_COUNT):
            key = self._keys.conversation_of(_text(raw))
            if key is not None and key.platform == platform and key.user_id == user_id:
                found.add(key)
        return sorted(found, key=lambda k: k.as_path())

    def _forget_conversation(self, key: ConversationKey) -> int:
        keys = self._keys
        turn_id, lease = cast(list[Any], self._redis.mget(keys.turn(key), keys.turn_owner(key)))
        removed = self._delete_matching(keys.conversation_pattern(key))
        turn_ids = {_text(turn_id)}
        if lease is not None:
            lease_text = _text(lease)
            turn_ids.add(lease_text.rsplit(".", 1)[0])
            removed += self._delete_matching(f"{keys.prefix}:lease:{glob_escape(lease_text)}:*")
        for turn in filter(None, turn_ids):
            removed += self._delete_matching(f"{keys.prefix}:turn:{glob_escape(turn)}:*")
        self._redis.zrem(keys.active(), member(key))
        self._redis.zrem(keys.handoffs(), member(key))  # the hold key went with conv:*
        return removed

    def _delete_matching(self, pattern: str) -> int:
        removed = 0
        batch: list[Any] = []
        for name in self._redis.scan_iter(match=pattern, count=_SCAN_COUNT):
            batch.append(name)
            if len(batch) >= _SCAN_COUNT:
                removed += int(cast(int, self._redis.delete(*batch)))
                batch = []
        if batch:
            removed += int(cast(int, self._redis.delete(*batch)))
        return removed


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
