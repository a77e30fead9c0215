"""Conversation state in Redis: the inbox, the one-turn-at-a-time lock, and delivery markers.

How a message becomes a turn:

1. `Inbox.accept` — in the webhook — drops a redelivered event (SET NX on its event id) and, in
   the same atomic script, appends the message to the conversation's *pending* list. A message
   is never half-accepted: either it is pending, or it was already seen.
2. `ConversationStore.take_turn` — in the I/O worker — moves every pending message to the
   *inflight* list and sets the *turn* key (the lock, with a TTL) to a new turn id, unless a turn
   is already in flight. Messages that arrive while a turn is answered wait in *pending* and
   become the next turn together.
3. `ConversationStore.finish_turn` — after the reply is sent — deletes *inflight* and the lock,
   if the lock still names that turn. If a worker died mid-turn the lock expires and the next
   `take_turn` resumes the inflight messages under a new turn id. A step that merely outlived
   the lock takes it back with `claim`, as long as no other turn has taken its messages.

Every step checks the turn id, so a redelivered Celery task of a finished turn does nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import redis

from bot.messages import ConversationKey, InboundMessage
from storage.keys import KeyBuilder

_ACCEPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""

# KEYS: pending, inflight, turn, owner.  ARGV: new turn id, lock ttl ms, list ttl s.
_TAKE_TURN = """
local current = redis.call('GET', KEYS[3])
if current then return {'busy', current, redis.call('PTTL', KEYS[3])} end
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then return {'idle'} end
while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do end
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[3])
return {'taken', ARGV[1]}
"""

# KEYS: inflight, turn, owner.  ARGV: turn id.
_FINISH_TURN = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 1
end
return 0
"""

# KEYS: turn, owner.  ARGV: turn id, ttl ms.  The turn's lock, kept or taken back: a slow step
# may outlive the lock, and the turn is still its own while nobody else has taken its messages.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not current and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: turn.  ARGV: turn id, ttl ms.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class Inbox:
    """The webhook's side: accept each platform event exactly once."""

    def __init__(self, client: redis.Redis, *, dedupe_ttl: int, pending_ttl: int,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._accept = client.register_script(_ACCEPT)
        self._dedupe_ttl = dedupe_ttl
        self._pending_ttl = pending_ttl

    def accept(self, message: InboundMessage) -> bool:
        """Queue `message` for its conversation; False when its event was seen before."""
        key = message.key
        dedupe = self._keys.dedupe(key.platform, key.bot_id, message.event_id)
        added = self._accept(
            keys=[dedupe, self._keys.pending(key)],
            args=[self._dedupe_ttl, message.model_dump_json(), self._pending_ttl],
        )
        return bool(added)


@dataclass(frozen=True)
class TurnState:
    """What `take_turn` found: a new turn, one already in flight, or nothing to do."""

    status: str  # "taken" | "busy" | "idle"
    turn_id: str | None = None
    retry_after: float = 0.0


class ConversationStore:
    """The I/O worker's side of the turn lifecycle described in the module docstring."""

    def __init__(self, client: redis.Redis, *, turn_ttl: int, keys: KeyBuilder | None = None,
                 marker_ttl: int = 24 * 3600) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._turn_ttl_ms = turn_ttl * 1000
        self._list_ttl = max(turn_ttl * 4, 3600)
        self._marker_ttl = marker_ttl
        self._take = client.register_script(_TAKE_TURN)
        self._finish = client.register_script(_FINISH_TURN)
        self._extend = client.register_script(_EXTEND)
        self._claim = client.register_script(_CLAIM)

    # --- pending -------------------------------------------------------------------------------
    def pending(self, key: ConversationKey) -> list[InboundMessage]:
        raw = self._redis.lrange(self._keys.pending(key), 0, -1)
        return [InboundMessage.model_validate_json(item) for item in raw]

    def has_work(self, key: ConversationKey) -> bool:
        return bool(self._redis.exists(self._keys.pending(key), self._keys.inflight(key)))

    # --- turns ---------------------------------------------------------------------------------
    def take_turn(self, key: ConversationKey) -> TurnState:
        new_id = uuid.uuid4().hex
        result = self._take(
            keys=[self._keys.pending(key), self._keys.inflight(key), self._keys.turn(key),
                  self._keys.turn_owner(key)],
            args=[new_id, self._turn_ttl_ms, self._list_ttl],
        )
        status = _text(result[0])
        if status == "busy":
            return TurnState("busy", _text(result[1]), max(int(result[2]), 0) / 1000)
        if status == "taken":
            return TurnState("taken", _text(result[1]))
        return TurnState("idle")

    def current_turn(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.turn(key))
        return _text(value) if value is not None else None

    def is_current(self, key: ConversationKey, turn_id: str) -> bool:
        return self.current_turn(key) == turn_id

    def turn_messages(self, key: ConversationKey) -> list[InboundMessage]:
        raw = self._redis.lrange(self._keys.inflight(key), 0, -1)
        return [InboundMessage.model_validate_json(item) for item in raw]

    def extend(self, key: ConversationKey, turn_id: str) -> bool:
        """Keep the lock of a turn that is still being worked on."""
        return bool(self._extend(keys=[self._keys.turn(key)], args=[turn_id, self._turn_ttl_ms]))

    def in_flight(self, key: ConversationKey, turn_id: str) -> bool:
        """Whether the turn's messages are still waiting for its answer (lock or not)."""
        value = self._redis.get(self._keys.turn_owner(key))
        return value is not None and _text(value) == turn_id

    def claim(self, key: ConversationKey, turn_id: str) -> bool:
        """Keep (or take back) the lock of a turn that is still being answered.

        False when the turn is over or another turn took its messages: the caller drops out.
        """
        return bool(self._claim(keys=[self._keys.turn(key), self._keys.turn_owner(key)],
                                args=[turn_id, self._turn_ttl_ms]))

    def finish_turn(self, key: ConversationKey, turn_id: str) -> bool:
        return bool(self._finish(
            keys=[self._keys.inflight(key), self._keys.turn(key), self._keys.turn_owner(key)],
            args=[turn_id]))

    # --- delivery markers: a redelivered task never sends a part twice --------------------------
    def sent_parts(self, turn_id: str) -> set[str]:
        return set(decode_all(self._redis.smembers(self._keys.turn_sent(turn_id))))

    def mark_sent(self, turn_id: str, index: str) -> None:
        name = self._keys.turn_sent(turn_id)
        pipe = self._redis.pipeline()
        pipe.sadd(name, index)
        pipe.expire(name, self._marker_ttl)
        pipe.execute()

    def set_partial(self, turn_id: str, text: str) -> None:
        """The answer so far, for the I/O worker to show while the model writes."""
        self._redis.set(self._keys.turn_partial(turn_id), text, ex=self._turn_ttl_ms // 1000)

    def partial(self, turn_id: str) -> str | None:
        value = self._redis.get(self._keys.turn_partial(turn_id))
        return _text(value) if value is not None else None

    def mark_done_once(self, turn_id: str) -> bool:
        """True the first time it is called for a turn (guards the history write)."""
        return bool(self._redis.set(self._keys.turn_done(turn_id), "1", nx=True,
                                    ex=self._marker_ttl))

    # --- the conversation's reply language -------------------------------------------------------
    def language(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.language(key))
        return _text(value) if value is not None else None

    def set_language(self, key: ConversationKey, language: str, ttl: int) -> None:
        self._redis.set(self._keys.language(key), language, ex=ttl)

    def pinned_language(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.language_pin(key))
        return _text(value) if value is not None else None

    def pin_language(self, key: ConversationKey, language: str | None, ttl: int) -> None:
        """Pin the reply language (/lang xx), or release it with None (/lang auto)."""
        if language is None:
            self._redis.delete(self._keys.language_pin(key))
        else:
            self._redis.set(self._keys.language_pin(key), language, ex=ttl)


class WorkerRegistry:
    """Heartbeats of live workers, read by the API's readiness check."""

    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()

    def beat(self, name: str) -> None:
        self._redis.zadd(self._keys.workers(), {name: time.time()})

    def leave(self, name: str) -> None:
        self._redis.zrem(self._keys.workers(), name)

    def alive(self, within: float = 30.0) -> list[str]:
        now = time.time()
        self._redis.zremrangebyscore(self._keys.workers(), 0, now - 24 * 3600)
        return [_text(cast("bytes | str", n))
                for n in self._redis.zrangebyscore(self._keys.workers(), now - within, "+inf")]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_all(values: Iterable[bytes | str]) -> list[str]:
    return [_text(v) for v in values]
