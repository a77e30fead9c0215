"""Conversation state in Redis: the inbox, turn leases, and what a turn has done so far.

Redis is the source of truth; Celery messages only say "look at this conversation now".

How a message becomes a turn:

1. `Inbox.accept` — in the webhook — drops a redelivered event (SET NX on its event id) and, in
   the same atomic script, appends the message to the conversation's *pending* list (capped:
   beyond `max_pending` the oldest waiting message is dropped and counted) and puts the
   conversation on the *active* set. A message is never half-accepted: either it is pending,
   or it was already seen. Once accepted, it is answered even if no task was ever published:
   the reconciler finds it.
2. `ConversationStore.take_turn` — in an I/O worker — moves every pending message to the
   *inflight* list and sets the *turn lease* (a key with a short TTL) and the *owner* to a new
   lease token `"{turn_id}.0"`, unless a lease is alive. If the lease expired while inflight
   messages remain (the worker holding it died), the same turn is resumed under its next epoch
   (`"{turn_id}.1"`, ...): everything the turn did is kept by turn id (its plan, its generated
   outcome, the reply parts already sent, the history write), so nothing is done twice, and
   every task of the dead epoch finds the owner changed and drops out.
3. A worker keeps the lease alive with `renew` (a heartbeat every few seconds) while it holds
   the turn, including the whole time the GPU generates.
4. `ConversationStore.finish_turn` — after the reply is sent and written down — deletes
   *inflight*, the lease and the owner, if the owner is still that token, and takes the
   conversation off the active set when nothing else waits.

`reconcile_check` is the reconciler's look at one active conversation: work without a live
lease is an orphan, to be started again.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import redis

from bot.messages import ConversationKey, InboundMessage
from storage.keys import KeyBuilder

# KEYS: dedupe, pending, active.  ARGV: dedupe ttl, message, pending ttl, cap, now, member.
_ACCEPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[6])
local dropped = 0
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[4]) do
  redis.call('LPOP', KEYS[2])
  dropped = dropped + 1
end
if dropped > 0 then return 2 end
return 1
"""

# KEYS: pending, inflight, turn, owner, active.
# ARGV: new turn id, lease ms, list ttl s, now, member.
_TAKE_TURN = """
local current = redis.call('GET', KEYS[3])
if current then return {'busy', current, redis.call('PTTL', KEYS[3])} end
local owner = redis.call('GET', KEYS[4])
if owner and redis.call('LLEN', KEYS[2]) > 0 then
  local id, epoch = string.match(owner, '^(.*)%.(%d+)$')
  if not id then id, epoch = owner, '0' end
  local token = id .. '.' .. (tonumber(epoch) + 1)
  redis.call('SET', KEYS[4], token, 'EX', ARGV[3])
  redis.call('SET', KEYS[3], token, 'PX', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
  return {'resumed', token}
end
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[5])
  return {'idle'}
end
while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do end
local token = ARGV[1] .. '.0'
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], token, 'PX', ARGV[2])
redis.call('SET', KEYS[4], token, 'EX', ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
return {'taken', token}
"""

# KEYS: inflight, turn, owner, pending, active.  ARGV: token, now, member.
_FINISH_TURN = """
local current = redis.call('GET', KEYS[2])
if redis.call('GET', KEYS[3]) ~= ARGV[1] or (current and current ~= ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('ZREM', KEYS[5], ARGV[3])
else
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[3])
end
return 1
"""

# KEYS: turn, owner, started, generating, outcome.  ARGV: token, lease ms, watch generation.
# Keeps the lease (or takes it back when it lapsed and nobody took the turn over). With the
# watch, an owner stops vouching for a turn whose generation began and whose GPU worker stopped
# beating without an outcome (-1): the lease then expires and the turn is resumed.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  if current or redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1
   and redis.call('EXISTS', KEYS[4]) == 0 and redis.call('EXISTS', KEYS[5]) == 0 then
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: active, pending, inflight, turn.  ARGV: member, now.
_RECONCILE = """
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 'gone'
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then return 'held' end
return 'orphan'
"""


class Acceptance(enum.IntEnum):
    """What `Inbox.accept` did; false only for a duplicate."""

    DUPLICATE = 0
    ACCEPTED = 1
    #: Accepted, and the conversation's oldest waiting message was dropped (backlog cap).
    ACCEPTED_DROPPED_OLDEST = 2


def member(key: ConversationKey) -> str:
    """A conversation's entry in the active set."""
    return key.model_dump_json()


class Inbox:
    """The webhook's side: accept each platform event exactly once."""

    def __init__(self, client: redis.Redis, *, dedupe_ttl: int, pending_ttl: int,
                 max_pending: int = 50, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._accept = client.register_script(_ACCEPT)
        self._dedupe_ttl = dedupe_ttl
        self._pending_ttl = pending_ttl
        self._max_pending = max_pending

    def accept(self, message: InboundMessage) -> Acceptance:
        """Queue `message` for its conversation; DUPLICATE when its event was seen before.

        Raises `redis.RedisError` when Redis cannot be reached: then nothing was recorded, and
        the platform's redelivery will be accepted.
        """
        key = message.key
        dedupe = self._keys.dedupe(key.platform, key.bot_id, message.event_id)
        result = self._accept(
            keys=[dedupe, self._keys.pending(key), self._keys.active()],
            args=[self._dedupe_ttl, message.model_dump_json(), self._pending_ttl,
                  self._max_pending, time.time(), member(key)],
        )
        return Acceptance(int(cast(int, result)))


@dataclass(frozen=True)
class TurnState:
    """What `take_turn` found: a new turn, a resumed one, one in flight, or nothing to do."""

    status: str  # "taken" | "resumed" | "busy" | "idle"
    #: The lease token, "{turn_id}.{epoch}".
    lease: str | None = None
    retry_after: float = 0.0

    @property
    def turn_id(self) -> str | None:
        return turn_id_of(self.lease) if self.lease else None


def turn_id_of(lease: str) -> str:
    """The turn id of a lease token: what every per-turn record is keyed by."""
    return lease.rsplit(".", 1)[0]


class ConversationStore:
    """The I/O and GPU workers' side of the turn lifecycle described in the module docstring."""

    def __init__(self, client: redis.Redis, *, lease_seconds: float = 30.0,
                 list_ttl: int = 4 * 3600, keys: KeyBuilder | None = None,
                 marker_ttl: int = 24 * 3600) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self.lease_ms = max(int(lease_seconds * 1000), 1)
        self._list_ttl = list_ttl
        self._marker_ttl = marker_ttl
        self._take = client.register_script(_TAKE_TURN)
        self._finish = client.register_script(_FINISH_TURN)
        self._renew = client.register_script(_RENEW)
        self._reconcile = client.register_script(_RECONCILE)

    # --- pending -------------------------------------------------------------------------------
    def pending(self, key: ConversationKey) -> list[InboundMessage]:
        raw = self._redis.lrange(self._keys.pending(key), 0, -1)
        return [InboundMessage.model_validate_json(item) for item in raw]

    def has_work(self, key: ConversationKey) -> bool:
        return bool(self._redis.exists(self._keys.pending(key), self._keys.inflight(key)))

    # --- turns ---------------------------------------------------------------------------------
    def take_turn(self, key: ConversationKey) -> TurnState:
        result = self._take(
            keys=[self._keys.pending(key), self._keys.inflight(key), self._keys.turn(key),
                  self._keys.turn_owner(key), self._keys.active()],
            args=[uuid.uuid4().hex, self.lease_ms, self._list_ttl, time.time(), member(key)],
        )
        status = _text(result[0])
        if status == "busy":
            return TurnState("busy", _text(result[1]), max(int(result[2]), 0) / 1000)
        if status in ("taken", "resumed"):
            return TurnState(status, _text(result[1]))
        return TurnState("idle")

    def current_lease(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.turn(key))
        return _text(value) if value is not None else None

    def turn_messages(self, key: ConversationKey) -> list[InboundMessage]:
        raw = self._redis.lrange(self._keys.inflight(key), 0, -1)
        return [InboundMessage.model_validate_json(item) for item in raw]

    def in_flight(self, key: ConversationKey, lease: str) -> bool:
        """Whether `lease` still owns the conversation's inflight messages (alive or lapsed)."""
        value = self._redis.get(self._keys.turn_owner(key))
        return value is not None and _text(value) == lease

    def renew(self, key: ConversationKey, lease: str, *, watch_generation: bool = False) -> int:
        """Keep (or take back) the lease: 1 kept, 0 the turn is over or was taken over, -1 (with
        `watch_generation`) its generation died: stop vouching for it."""
        return int(self._renew(
            keys=[self._keys.turn(key), self._keys.turn_owner(key),
                  self._keys.lease_started(lease), self._keys.lease_generating(lease),
                  self._keys.turn_outcome(turn_id_of(lease))],
            args=[lease, self.lease_ms, "1" if watch_generation else "0"]))

    def claim(self, key: ConversationKey, lease: str) -> bool:
        """Keep or take back the lease for a step about to act; False: drop out."""
        return self.renew(key, lease) == 1

    def finish_turn(self, key: ConversationKey, lease: str) -> bool:
        return bool(self._finish(
            keys=[self._keys.inflight(key), self._keys.turn(key), self._keys.turn_owner(key),
                  self._keys.pending(key), self._keys.active()],
            args=[lease, time.time(), member(key)]))

    # --- step locks: one generation and one delivery of a lease at a time -----------------------
    def begin_generation(self, lease: str) -> bool:
        """Mark the lease's generation begun; False when another worker is generating it (a
        redelivered job). The generation key lives while `keep_alive` renews it."""
        if not self._redis.set(self._keys.lease_generating(lease), "1", nx=True,
                               px=self.lease_ms):
            return False
        self._redis.set(self._keys.lease_started(lease), "1", ex=self._list_ttl)
        return True

    def generation_key(self, lease: str) -> str:
        return self._keys.lease_generating(lease)

    def lock_delivery(self, turn_id: str) -> str | None:
        """The turn's delivery lock (None: another delivery is sending); renew with
        `keep_alive(delivery_key)`, release with `unlock`."""
        name = self._keys.turn_delivering(turn_id)
        return name if self._redis.set(name, "1", nx=True, px=self.lease_ms) else None

    def delivery_lock_ttl(self, turn_id: str) -> float:
        return max(int(self._redis.pttl(self._keys.turn_delivering(turn_id))), 0) / 1000

    def keep_alive(self, name: str) -> None:
        self._redis.pexpire(name, self.lease_ms)

    def unlock(self, name: str) -> None:
        self._redis.delete(name)

    # --- what the turn did, by turn id: a resumed turn picks up where it stopped -----------------
    def save_plan(self, turn_id: str, plan_json: str) -> None:
        self._redis.set(self._keys.turn_plan(turn_id), plan_json, ex=self._list_ttl)

    def plan(self, turn_id: str) -> str | None:
        value = self._redis.get(self._keys.turn_plan(turn_id))
        return _text(value) if value is not None else None

    def save_outcome(self, turn_id: str, outcome_json: str) -> str:
        """Keep the first outcome of a turn; returns the one kept."""
        name = self._keys.turn_outcome(turn_id)
        pipe = self._redis.pipeline()
        pipe.set(name, outcome_json, nx=True, ex=self._list_ttl)
        pipe.get(name)
        _, kept = pipe.execute()
        return _text(kept) if kept is not None else outcome_json

    def outcome(self, turn_id: str) -> str | None:
        value = self._redis.get(self._keys.turn_outcome(turn_id))
        return _text(value) if value is not None else None

    # --- the reconciler --------------------------------------------------------------------------
    def active_since(self, before: float, limit: int = 500) -> list[ConversationKey]:
        """Active conversations nobody looked at since `before` (oldest first)."""
        raw = self._redis.zrangebyscore(self._keys.active(), "-inf", before, start=0, num=limit)
        return [ConversationKey.model_validate_json(cast(bytes, item)) for item in raw]

    def reconcile_check(self, key: ConversationKey) -> str:
        """'gone' (no work: taken off the set), 'held' (a live lease), or 'orphan'."""
        return _text(self._reconcile(
            keys=[self._keys.active(), self._keys.pending(key), self._keys.inflight(key),
                  self._keys.turn(key)],
            args=[member(key), time.time()]))

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
        self._redis.set(self._keys.turn_partial(turn_id), text, ex=self._list_ttl)

    def partial(self, turn_id: str) -> str | None:
        value = self._redis.get(self._keys.turn_partial(turn_id))
        return _text(value) if value is not None else None

    def done_marker(self, turn_id: str) -> str:
        """The key set, together with the history write, once a turn's history is written."""
        return self._keys.turn_done(turn_id)

    def is_done(self, turn_id: str) -> bool:
        return bool(self._redis.exists(self._keys.turn_done(turn_id)))

    # --- the conversation's reply language -------------------------------------------------------
    def language(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.language(key))
        return _text(value) if value is not None else None

    def set_language(self, key: ConversationKey, language: str, ttl: int,
                     since: float = 0.0) -> None:
        """Remember the reply language, unless the person's data was deleted after `since`
        (when the turn began; storage/erasure.py): no key of theirs comes back."""
        erased = self._redis.get(self._keys.erased(key.platform, key.user_id)) if key.user_id \
            else None
        if erased is not None and float(erased) >= since:
            return
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
