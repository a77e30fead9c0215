"""Conversation state in Redis: turn leases, and what a turn has done so far.

Redis is the source of truth; Celery messages only say "look at this conversation now".

How a message becomes a turn:

1. `Inbox.accept` (storage/inbox.py), in the webhook, appends the message to the conversation's
   *pending* list and puts the conversation on the *active* set (see there).
2. `ConversationStore.start_turn`, in an I/O worker, in one script: moves every pending message
   to the *inflight* list and sets the *turn lease* (a key with a short TTL) and the *owner* to a
   new lease token `"{turn_id}.0"`, unless a lease is alive; and returns, batched, what the turn
   reads before it is planned: its messages, the conversation's language and /lang pin, and the
   newest history entries. If the lease expired while inflight messages remain (the worker
   holding it died), the same turn is resumed under its next epoch (`"{turn_id}.1"`, ...):
   what the turn did is kept by turn id (its generated outcome, the reply parts already sent),
   and the history is written together with the release (step 4), so nothing is done twice;
   every task of the dead epoch finds the owner changed and drops out.
3. A worker keeps the lease alive with `renew` (a heartbeat every few seconds) while it holds
   the turn, including the whole time the model generates.
4. `ConversationStore.finish_turn`, after the reply is sent and logged, in one script: appends
   the turn's history entries and remembers its language (unless the person's data was deleted
   since the turn began), deletes *inflight*, the lease and the owner if the owner is still
   that token, and says whether more messages wait (the next turn), taking the conversation off
   the active set when none do. History and release in one atomic step: a retried or resumed
   delivery can neither write the history twice nor lose it.

`reconcile_check` is the reconciler's look at one active conversation: work without a live
lease is an orphan, to be started again.

Cost, counted as `INFO commandstats` counts (every command inside a script): a text turn takes
about 9 commands to start and 10 to finish (benchmarks/turn_cost.py).
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from bot.kernel.messages import ConversationKey, InboundMessage
from storage.keys import KeyBuilder

# KEYS: pending, inflight, turn, owner, active, language, pin, history, handoff.
# ARGV: new turn id, lease ms, list ttl, now, member, album window s, history entries wanted.
# Returns {status, token, messages, language, pin, history, hold} for 'taken' and 'resumed'
# (the hold is read in the MGET of language and pin: no extra command),
# {'busy', token, ms left}, {'wait', seconds} (an album still arriving), or {'idle'}.
#: How long a month's sent count (and a pause note) lives: past the end of any month.
MONTH_COUNTER_TTL = 40 * 86400

_START_TURN = """
local held = redis.call('MGET', KEYS[3], KEYS[4])
local current, owner = held[1], held[2]
if current then return {'busy', current, redis.call('PTTL', KEYS[3])} end
local inflight = redis.call('LLEN', KEYS[2])
local token, status, messages
if owner and inflight > 0 then
  local id, epoch = string.match(owner, '^(.*)%.(%d+)$')
  if not id then id, epoch = owner, '0' end
  token = id .. '.' .. (tonumber(epoch) + 1)
  status = 'resumed'
  messages = redis.call('LRANGE', KEYS[2], 0, -1)
else
  messages = redis.call('LRANGE', KEYS[1], 0, -1)
  if #messages == 0 and inflight == 0 then
    if owner then redis.call('DEL', KEYS[4]) end
    redis.call('ZREM', KEYS[5], ARGV[5])
    return {'idle'}
  end
  local window = tonumber(ARGV[6])
  if window > 0 and #messages > 0 then
    local ok, last = pcall(cjson.decode, messages[#messages])
    if ok and type(last) == 'table' and type(last['album_id']) == 'string' then
      local wait = tonumber(last['received_at'] or 0) + window - tonumber(ARGV[4])
      if wait > 0 then return {'wait', tostring(wait)} end
    end
  end
  if inflight == 0 then
    redis.call('RENAME', KEYS[1], KEYS[2])
  else
    -- Messages left in flight with no owner (it expired first): they join this turn.
    while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do end
    messages = redis.call('LRANGE', KEYS[2], 0, -1)
    redis.call('EXPIRE', KEYS[2], ARGV[3])
  end
  token = ARGV[1] .. '.0'
  status = 'taken'
end
redis.call('SET', KEYS[3], token, 'PX', ARGV[2])
redis.call('SET', KEYS[4], token, 'EX', ARGV[3])
local known = redis.call('MGET', KEYS[6], KEYS[7], KEYS[9])
local history = {}
if tonumber(ARGV[7]) > 0 then
  history = redis.call('LRANGE', KEYS[8], -tonumber(ARGV[7]), -1)
end
return {status, token, messages, known[1] or '', known[2] or '', history, known[3] or ''}
"""

# KEYS: inflight, turn, owner, pending, active, history, image set, language, erased.
# ARGV: token, now, member, history ttl, max history entries, since, language, language ttl,
#       image key prefix, history entries...
# Returns {released (0/1), messages waiting (LLEN pending)}. A tombstone (the time the person's
# data was deleted) newer than `since` stops the history and language writes.
_FINISH_TURN = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {0, 0} end
if #ARGV > 9 or ARGV[7] ~= '' then
  local erased = redis.call('GET', KEYS[9])
  if not (erased and tonumber(erased) >= tonumber(ARGV[6])) then
    if #ARGV > 9 then
      local keep = tonumber(ARGV[5])
      if keep > 0 then
        local length = redis.call('RPUSH', KEYS[6], unpack(ARGV, 10))
        if length > keep then redis.call('LTRIM', KEYS[6], -keep, -1) end
        redis.call('EXPIRE', KEYS[6], ARGV[4])
      else
        redis.call('DEL', KEYS[6])
      end
      if redis.call('EXPIRE', KEYS[7], ARGV[4]) == 1 then
        for _, id in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
          redis.call('EXPIRE', ARGV[9] .. id, ARGV[4])
        end
      end
    end
    if ARGV[7] ~= '' then redis.call('SET', KEYS[8], ARGV[7], 'EX', ARGV[8]) end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local waiting = redis.call('LLEN', KEYS[4])
if waiting == 0 then
  redis.call('ZREM', KEYS[5], ARGV[3])
else
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[3])
end
return {1, waiting}
"""

# KEYS: owner, outcome, generating, started.  ARGV: token, lease ms, started ttl.
# A GPU worker's first look at a job: {'stale'} when the turn moved on, {'kept', outcome} when
# it was generated already, {'busy'} when another worker generates it, else {'go'} with the
# generation marked begun.
_BEGIN_GENERATION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'stale'} end
local kept = redis.call('GET', KEYS[2])
if kept then return {'kept', kept} end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return {'busy'} end
redis.call('SET', KEYS[4], '1', 'EX', ARGV[3])
return {'go'}
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


def member(key: ConversationKey) -> str:
    """A conversation's entry in the active set."""
    return key.model_dump_json()


class TurnStatus(enum.StrEnum):
    """What `start_turn` found."""

    TAKEN = "taken"
    RESUMED = "resumed"
    #: Another worker holds a live lease: it starts the next turn when it ends.
    BUSY = "busy"
    #: An album's photos are still arriving: come back after `wait` seconds.
    WAIT = "wait"
    IDLE = "idle"


@dataclass(frozen=True)
class Started:
    """What `start_turn` did, and what the turn reads before it is planned (one round trip)."""

    status: TurnStatus
    #: The lease token, "{turn_id}.{epoch}".
    lease: str | None = None
    messages: tuple[InboundMessage, ...] = ()
    #: The conversation's reply language and its /lang pin, when known.
    language: str | None = None
    pin: str | None = None
    #: The newest history entries (raw JSON, oldest first): `storage.history.parse_entries`.
    history: tuple[bytes, ...] = ()
    #: BUSY: how long the holder's lease still runs; WAIT: when to come back (seconds).
    wait: float = 0.0
    #: The conversation's hand-off hold (raw `storage.handoff.Hold` JSON), when held.
    handoff: str | None = None

    @property
    def turn_id(self) -> str | None:
        return turn_id_of(self.lease) if self.lease else None

    @property
    def epoch(self) -> int:
        return int(self.lease.rsplit(".", 1)[1]) if self.lease and "." in self.lease else 0


@dataclass(frozen=True)
class Finished:
    """What `finish_turn` did: whether this lease released the turn, and whether messages wait
    for the next one."""

    released: bool
    more: bool


#: A sent marker's value is "1", or this prefix and the platform's message id of the part.
SENT_ID_PREFIX = "="


def _sent_id(marker: str) -> str | None:
    return marker[len(SENT_ID_PREFIX):] or None if marker.startswith(SENT_ID_PREFIX) else None


def turn_id_of(lease: str) -> str:
    """The turn id of a lease token: what every per-turn record is keyed by."""
    return lease.rsplit(".", 1)[0]


class ConversationStore:
    """The I/O and GPU workers' side of the turn lifecycle described in the module docstring.

    `history_ttl` and `max_history` are the history's (HISTORY_TTL_SECONDS,
    HISTORY_MAX_TURNS): the turn's entries are written by `finish_turn`, with the release."""

    def __init__(self, client: redis.Redis, *, lease_seconds: float = 30.0,
                 list_ttl: int = 4 * 3600, keys: KeyBuilder | None = None,
                 marker_ttl: int = 24 * 3600, history_ttl: int = 24 * 3600,
                 max_history: int = 20) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self.lease_ms = max(int(lease_seconds * 1000), 1)
        self._list_ttl = list_ttl
        self._marker_ttl = marker_ttl
        self._history_ttl = history_ttl
        self._max_history = max_history
        self._start = client.register_script(_START_TURN)
        self._finish = client.register_script(_FINISH_TURN)
        self._begin = client.register_script(_BEGIN_GENERATION)
        self._renew = client.register_script(_RENEW)
        self._reconcile = client.register_script(_RECONCILE)

    @property
    def client(self) -> redis.Redis:
        return self._redis

    @property
    def keys(self) -> KeyBuilder:
        """The key builder (for the keys a stage names: the month's sent count)."""
        return self._keys

    # --- pending -------------------------------------------------------------------------------
    def pending(self, key: ConversationKey) -> list[InboundMessage]:
        raw = self._redis.lrange(self._keys.pending(key), 0, -1)
        return [InboundMessage.model_validate_json(item) for item in raw]

    def has_work(self, key: ConversationKey) -> bool:
        return bool(self._redis.exists(self._keys.pending(key), self._keys.inflight(key)))

    # --- turns ---------------------------------------------------------------------------------
    def start_turn(self, key: ConversationKey, *, album_window: float = 0.0,
                   history: int = 0) -> Started:
        """Take (or resume) the conversation's next turn and read what planning needs: its
        messages, language, pin and newest `history` entries (see the module docstring)."""
        k = self._keys
        result = self._start(
            keys=[k.pending(key), k.inflight(key), k.turn(key), k.turn_owner(key), k.active(),
                  k.language(key), k.language_pin(key), k.history(key), k.handoff(key)],
            args=[uuid.uuid4().hex, self.lease_ms, self._list_ttl, time.time(), member(key),
                  album_window, history])
        status = TurnStatus(_text(result[0]))
        if status is TurnStatus.BUSY:
            return Started(status, _text(result[1]), wait=max(int(result[2]), 0) / 1000)
        if status is TurnStatus.WAIT:
            return Started(status, wait=float(_text(result[1])))
        if status is TurnStatus.IDLE:
            return Started(status)
        return Started(status, _text(result[1]),
                       tuple(InboundMessage.model_validate_json(m) for m in result[2]),
                       language=_text(result[3]) or None, pin=_text(result[4]) or None,
                       history=tuple(result[5]),
                       handoff=_text(result[6]) or None)

    def take_turn(self, key: ConversationKey) -> Started:
        """`start_turn` without reading anything for planning (tests, tools)."""
        return self.start_turn(key)

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

    def finish_turn(self, key: ConversationKey, lease: str, *,
                    history: tuple[str, ...] = (), language: str | None = None,
                    language_ttl: int = 0, since: float = 0.0) -> Finished:
        """End the turn of `lease`: append its `history` entries (JSON) and remember its
        `language` for `language_ttl` seconds, unless the person's data was deleted after
        `since` (when the turn began); then release it (see the module docstring)."""
        k = self._keys
        result = self._finish(
            keys=[k.inflight(key), k.turn(key), k.turn_owner(key), k.pending(key), k.active(),
                  k.history(key), k.images(key), k.language(key),
                  k.erased(key.platform, key.user_id)],
            args=[lease, time.time(), member(key), self._history_ttl, self._max_history, since,
                  language or "", max(int(language_ttl), 1), k.image(key, ""), *history])
        return Finished(released=bool(int(result[0])), more=int(result[1]) > 0)

    # --- generation and delivery of a turn that crossed to another worker ----------------------
    def begin_generation(self, key: ConversationKey, lease: str) -> tuple[str, str | None]:
        """A GPU worker's first look at a job: ("stale", None) the turn moved on, ("kept",
        outcome JSON) it was generated already, ("busy", None) another worker generates it,
        ("go", None) the generation is marked begun (renew its key with `keep_alive`)."""
        result = self._begin(
            keys=[self._keys.turn_owner(key), self._keys.turn_outcome(turn_id_of(lease)),
                  self._keys.lease_generating(lease), self._keys.lease_started(lease)],
            args=[lease, self.lease_ms, self._list_ttl])
        state = _text(result[0])
        return state, (_text(result[1]) if state == "kept" else None)

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
    def keep_outcome(self, turn_id: str, outcome_json: str) -> str:
        """Keep the first outcome of a turn; returns the one kept (one command when first)."""
        name = self._keys.turn_outcome(turn_id)
        if self._redis.set(name, outcome_json, nx=True, ex=self._list_ttl):
            return outcome_json
        kept = self._redis.get(name)
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
    def sent_parts(self, turn_id: str, parts: int) -> set[int]:
        """Which of a reply's first `parts` parts went out (one MGET)."""
        if parts <= 0:
            return set()
        values = self._redis.mget([self._keys.turn_sent(turn_id, i) for i in range(parts)])
        return {i for i, value in enumerate(values) if value is not None}

    def sent_part_ids(self, turn_id: str, parts: int) -> dict[int, str | None]:
        """Which of a reply's first `parts` parts went out, with the platform's message id of
        each (None when it gave none; one MGET)."""
        if parts <= 0:
            return {}
        values = self._redis.mget([self._keys.turn_sent(turn_id, i) for i in range(parts)])
        return {i: _sent_id(_text(value)) for i, value in enumerate(values) if value is not None}

    def mark_sent(self, turn_id: str, index: int, counter: str | None = None,
                  message_id: str | None = None) -> None:
        """The part went out (as the platform's `message_id`, kept as the marker's value: a
        reaction on it finds the answer); `counter` (a `KeyBuilder.sent_month` key) counts it,
        in the same round trip (SET, INCR, EXPIRE: the month's count lives 40 days)."""
        pipe = self._redis.pipeline(transaction=False)
        marker = f"{SENT_ID_PREFIX}{message_id}" if message_id else "1"
        pipe.set(self._keys.turn_sent(turn_id, index), marker, ex=self._marker_ttl)
        if counter is not None:
            pipe.incr(counter)
            pipe.expire(counter, MONTH_COUNTER_TTL)
        pipe.execute()

    def sent_count(self, counter: str) -> int:
        """Messages counted in `counter` (a `KeyBuilder.sent_month` key)."""
        return int(cast(Any, self._redis.get(counter)) or 0)

    def first_time(self, marker: str, ttl: int = MONTH_COUNTER_TTL) -> bool:
        """Set `marker` (SET NX): True only the first time."""
        return bool(self._redis.set(marker, "1", nx=True, ex=ttl))

    def set_partial(self, turn_id: str, text: str) -> None:
        """The answer so far, for the I/O worker to show while the model writes."""
        self._redis.set(self._keys.turn_partial(turn_id), text, ex=self._list_ttl)

    def partial(self, turn_id: str) -> str | None:
        value = self._redis.get(self._keys.turn_partial(turn_id))
        return _text(value) if value is not None else None

    # --- the conversation's reply language -------------------------------------------------------
    def known(self, key: ConversationKey, *, history: int = 0
              ) -> tuple[str | None, str | None, tuple[bytes, ...]]:
        """What `start_turn` reads for planning (language, pin, newest history entries), for a
        turn that goes on after a hop (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.mget(self._keys.language(key), self._keys.language_pin(key))
        if history > 0:
            pipe.lrange(self._keys.history(key), -history, -1)
        found = pipe.execute()
        language, pin = (_text(v) if v is not None else None for v in found[0])
        return language, pin, tuple(found[1]) if history > 0 else ()

    def language(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.language(key))
        return _text(value) if value is not None else None

    def pinned_language(self, key: ConversationKey) -> str | None:
        value = self._redis.get(self._keys.language_pin(key))
        return _text(value) if value is not None else None

    def pin_language(self, key: ConversationKey, language: str | None, ttl: int) -> None:
        """Pin the reply language (/lang xx), or release it with None (/lang auto)."""
        if language is None:
            self._redis.delete(self._keys.language_pin(key))
        else:
            self._redis.set(self._keys.language_pin(key), language, ex=ttl)

    # --- a worker that stops hands its turns back -----------------------------------------------
    def hand_back(self, key: ConversationKey, lease: str) -> bool:
        """Let the turn's lease go now, if `lease` still holds it and no step lock of it is
        taken (its generation, its delivery: the worker running that step keeps the lease
        itself). True when let go: the next `take_turn` resumes the turn under its next epoch at
        once, instead of after the lease expires; its owner, inflight messages and records
        stay. The caller releases its own step locks first."""
        # KEYS: turn, generating, delivering.  ARGV: token.
        script = self._redis.register_script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
""")
        return bool(script(keys=[self._keys.turn(key), self._keys.lease_generating(lease),
                                 self._keys.turn_delivering(turn_id_of(lease))],
                           args=[lease]))


class WorkerRegistry:
    """Heartbeats of live workers, read by the API's readiness check."""

    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()

    def beat(self, name: str) -> None:
        self._redis.zadd(self._keys.workers(), {name: time.time()})

    def leave(self, name: str) -> None:
        self._redis.zrem(self._keys.workers(), name)

    def alive_on(self, host: str, within: float = 60.0) -> bool:
        """Whether a worker of `host` beat within `within` seconds (members are "host:pid")."""
        return any(name.startswith(host + ":") for name in self.alive(within=within))

    def alive(self, within: float = 30.0) -> list[str]:
        now = time.time()
        self._redis.zremrangebyscore(self._keys.workers(), 0, now - 24 * 3600)
        return [_text(cast("bytes | str", n))
                for n in self._redis.zrangebyscore(self._keys.workers(), now - within, "+inf")]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_all(values: Iterable[bytes | str]) -> list[str]:
    return [_text(v) for v in values]
