"""Forgetting a person in Redis: the Redis side of "delete this person" (the SQL log's side is
`storage.log.erasure`).

`mark_erased` sets the person's tombstone (`KeyBuilder.erased`) first, so that a turn still in
flight can no longer write their history or photos back (`RedisHistory.append` and
`save_image` check it atomically); `forget_conversations` then deletes every key of each of
their conversations:

* every ``sealion:conv:{conversation}:*`` key — pending and in-flight messages, the turn lock
  (``turn``) and its lease (``owner``), history, photos, language, pin, busy notice, outbox;
* the keys of the turn in flight — ``sealion:turn:{turn_id}:*`` (parts sent, done marker,
  partial answer, plan, outcome) and ``sealion:lease:{lease}:*``;
* the conversation's entry in the active set;
* the person's rate-limit buckets on every bot of the platform.

The tombstone lives `erasure_hold_seconds` (longer than any turn can stay in flight,
redelivery included); meanwhile the person's private conversations keep no history. Group
conversations are keyed by the group, not by a person: their shared Redis history is not
rewritten (it expires after `HISTORY_TTL_SECONDS`); what the person wrote there is deleted from
the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

import redis

from bot.messages import ConversationKey, Platform
from bot.settings import Settings
from storage.conversations import member
from storage.keys import KeyBuilder, glob_escape

#: Scanning is done in pages of this many keys.
_SCAN_COUNT = 500


def erasure_hold_seconds(settings: Settings) -> int:
    """How long a tombstone must live: a turn's task may be redelivered after the visibility
    timeout and then run for the turn's timeout."""
    return settings.celery_visibility_timeout + settings.turn_timeout_seconds


def mark_erased(client: redis.Redis, keys: KeyBuilder, platform: Platform, user_id: str, *,
                hold_seconds: int) -> None:
    """Set the person's tombstone: from now on no history or photo of theirs is written."""
    if not user_id:
        raise ValueError("a person's user id is required")
    client.set(keys.erased(platform, user_id), str(time.time()), ex=max(1, hold_seconds))


def forget_conversations(client: redis.Redis, keys: KeyBuilder, platform: Platform,
                         user_id: str, conversations: Iterable[ConversationKey]) -> int:
    """Delete every key of `conversations` (the person's) and the person's rate-limit keys.
    Returns how many keys were deleted. Call `mark_erased` first."""
    removed = 0
    for key in conversations:
        removed += _forget_conversation(client, keys, key)
    for pattern in keys.rate_patterns(platform, user_id):
        removed += _delete_matching(client, pattern)
    return removed


def is_erased(client: redis.Redis, keys: KeyBuilder, platform: Platform, user_id: str) -> bool:
    """Whether the person was deleted within the tombstone's lifetime."""
    return bool(user_id) and bool(client.exists(keys.erased(platform, user_id)))


def _forget_conversation(client: redis.Redis, keys: KeyBuilder, key: ConversationKey) -> int:
    turn_id, lease = cast(list[Any], client.mget(keys.turn(key), keys.turn_owner(key)))
    removed = _delete_matching(client, keys.conversation_pattern(key))
    turn_ids = {_text(turn_id)}
    if lease is not None:
        lease_text = _text(lease)
        turn_ids.add(lease_text.rsplit(".", 1)[0])
        removed += _delete_matching(client, f"{keys.prefix}:lease:{glob_escape(lease_text)}:*")
    for turn in filter(None, turn_ids):
        removed += _delete_matching(client, f"{keys.prefix}:turn:{glob_escape(turn)}:*")
    client.zrem(keys.active(), member(key))
    return removed


def _delete_matching(client: redis.Redis, pattern: str) -> int:
    removed = 0
    batch: list[Any] = []
    for name in client.scan_iter(match=pattern, count=_SCAN_COUNT):
        batch.append(name)
        if len(batch) >= _SCAN_COUNT:
            removed += int(cast(int, client.delete(*batch)))
            batch = []
    if batch:
        removed += int(cast(int, client.delete(*batch)))
    return removed


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
