"""Abuse controls in Redis: a per-person rate limit, the block list, and the generation backlog.

- `RateLimiter` — a token bucket per person (RATE_LIMIT_MESSAGES per
  RATE_LIMIT_WINDOW_SECONDS), decided for each message in one Lua script. The script remembers
  its decision under the message's event id, so a redelivered task never spends a second token,
  and it says whether the person should get the "please slow down" notice: at most once a window.
- `BlockList` — people an admin blocked, by platform and person id. Their messages never reach
  the model.
- `Backlog` — when each turn's request went to the model, until its answer came back; the age of
  the oldest tells a new turn that people are waiting (the busy notice), which is sent at most
  once a window per conversation.

A person is the sender of a message: in a private chat the conversation's user, in a group the
member who wrote (or the chat, when a platform does not say).

Errors: Redis errors propagate (`redis.RedisError`); callers decide to let the message through.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from dataclasses import dataclass

import redis

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.keys import KeyBuilder

__all__ = ["AbuseScreen", "Backlog", "BlockList", "BlockedPerson", "RateDecision", "RateLimiter",
           "TurnScreen", "Verdict", "person_of"]

# KEYS: bucket, noticed, event marker.  ARGV: capacity, window seconds.
# Returns the decision: "ok", "limited-notice" (send the notice) or "limited".
_TAKE_TOKEN = """
local known = redis.call('GET', KEYS[3])
if known then return known end
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * capacity / window)
end
local decision
if tokens >= 1 then
  tokens = tokens - 1
  decision = 'ok'
elseif redis.call('SET', KEYS[2], '1', 'NX', 'EX', math.ceil(window)) then
  decision = 'limited-notice'
else
  decision = 'limited'
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(window) * 2)
redis.call('SET', KEYS[3], decision, 'EX', math.ceil(window) * 2 + 3600)
return decision
"""


# The screen of a whole turn at once. KEYS: the block list, then each person's bucket and
# "noticed" key. ARGV: capacity, window seconds, now, then per person: block-list field, tokens
# wanted (0: only the block list). Returns per person {blocked (0/1), granted, notice (0/1)}.
# One HMGET for every person's block-list entry; a person's bucket is read and written once.
_SCREEN_TURN = """
local capacity, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local people = (#ARGV - 3) / 2
local fields = {}
for i = 1, people do fields[i] = ARGV[2 + 2 * i] end
local blocked = redis.call('HMGET', KEYS[1], unpack(fields))
local out = {}
for i = 1, people do
  local want = tonumber(ARGV[3 + 2 * i])
  if blocked[i] then
    out[#out + 1] = {1, 0, 0}
  elseif capacity <= 0 or want == 0 then
    out[#out + 1] = {0, want, 0}
  else
    local bucket, noticed = KEYS[2 * i], KEYS[2 * i + 1]
    local state = redis.call('HMGET', bucket, 'tokens', 'at')
    local tokens, at = tonumber(state[1]), tonumber(state[2])
    if tokens == nil then
      tokens = capacity
    else
      tokens = math.min(capacity, tokens + math.max(0, now - at) * capacity / window)
    end
    local granted = math.min(math.floor(tokens), want)
    tokens = tokens - granted
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', tostring(now))
    redis.call('EXPIRE', bucket, math.ceil(window) * 2)
    local notice = 0
    if granted < want and redis.call('SET', noticed, '1', 'NX', 'EX', math.ceil(window)) then
      notice = 1
    end
    out[#out + 1] = {0, granted, notice}
  end
end
return out
"""


class Verdict(enum.StrEnum):
    """The screen's decision on one message of a turn."""

    OK = "ok"
    BLOCKED = "blocked"
    LIMITED = "limited"


@dataclass(frozen=True)
class TurnScreen:
    """The screen of a turn's messages: a verdict each (in order), and whether the person(s)
    over the limit should be told to slow down (at most once a window each)."""

    verdicts: tuple[Verdict, ...]
    notify_limited: bool = False


class AbuseScreen:
    """The block list and the per-person rate limit, decided for all of a turn's messages in
    one script when the turn is taken (each message is screened once: a resumed turn spends no
    tokens again, and a message the web chat already paid for (`rate_checked`) spends none)."""

    def __init__(self, client: redis.Redis, *, messages: int, window_seconds: float,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self.messages = messages
        self.window_seconds = window_seconds
        self._screen = client.register_script(_SCREEN_TURN)

    def screen(self, messages: list[InboundMessage] | tuple[InboundMessage, ...], *,
               spend: bool = True) -> TurnScreen:
        people: dict[tuple[str, str, str], list[int]] = {}
        for index, message in enumerate(messages):
            key = message.key
            people.setdefault((key.platform.value, key.bot_id, person_of(message)),
                              []).append(index)
        keys = [self._keys.blocked()]
        args: list[str | int | float] = [self.messages, self.window_seconds, time.time()]
        for (platform, bot_id, person), indices in people.items():
            keys += [self._keys.rate_bucket(Platform(platform), bot_id, person),
                     self._keys.rate_noticed(Platform(platform), bot_id, person)]
            wanted = sum(1 for i in indices if not messages[i].rate_checked) if spend else 0
            args += [f"{platform}:{person}", wanted]
        result = self._screen(keys=keys, args=args)
        verdicts = [Verdict.OK] * len(messages)
        notify = False
        for (indices, (blocked, granted, notice)) in zip(people.values(), result, strict=True):
            unpaid = [i for i in indices if spend and not messages[i].rate_checked]
            for i in indices:
                if int(blocked):
                    verdicts[i] = Verdict.BLOCKED
            if not int(blocked):
                for i in unpaid[int(granted):]:
                    verdicts[i] = Verdict.LIMITED
            notify = notify or bool(int(notice))
        return TurnScreen(tuple(verdicts), notify)


def person_of(message: InboundMessage) -> str:
    """Who wrote `message`: its sender when the platform says, else the conversation's person."""
    return (getattr(message, "sender_id", None) or message.key.user_id
            or message.key.chat_id)


class RateDecision(enum.StrEnum):
    OK = "ok"
    #: Over the limit, and the person has not been told yet in this window.
    LIMITED_NOTICE = "limited-notice"
    LIMITED = "limited"

    @property
    def allowed(self) -> bool:
        return self is RateDecision.OK


class RateLimiter:
    """RATE_LIMIT_MESSAGES per RATE_LIMIT_WINDOW_SECONDS per person; `messages` 0 is no limit."""

    def __init__(self, client: redis.Redis, *, messages: int, window_seconds: float,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self.messages = messages
        self.window_seconds = window_seconds
        self._take = client.register_script(_TAKE_TOKEN)

    def check(self, message: InboundMessage) -> RateDecision:
        """Spend one of the sender's tokens on `message` (once per event id)."""
        if self.messages <= 0:
            return RateDecision.OK
        key, person = message.key, person_of(message)
        decision = self._take(
            keys=[self._keys.rate_bucket(key.platform, key.bot_id, person),
                  self._keys.rate_noticed(key.platform, key.bot_id, person),
                  self._keys.rate_event(key.platform, key.bot_id, message.event_id)],
            args=[self.messages, self.window_seconds])
        return RateDecision(_text(decision))


@dataclass(frozen=True)
class BlockedPerson:
    platform: Platform
    person: str
    blocked_at: dt.datetime
    note: str = ""


class BlockList:
    """The people an admin blocked (admin console), checked for every message."""

    def __init__(self, client: redis.Redis, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()

    @staticmethod
    def _field(platform: Platform | str, person: str) -> str:
        return f"{Platform(platform).value}:{person}"

    def block(self, platform: Platform | str, person: str, note: str = "") -> None:
        if not person:
            raise ValueError("a person's id is required")
        value = json.dumps({"at": time.time(), "note": note[:200]})
        self._redis.hset(self._keys.blocked(), self._field(platform, person), value)

    def unblock(self, platform: Platform | str, person: str) -> bool:
        return bool(self._redis.hdel(self._keys.blocked(), self._field(platform, person)))

    def is_blocked(self, platform: Platform | str, person: str) -> bool:
        return bool(person) and bool(
            self._redis.hexists(self._keys.blocked(), self._field(platform, person)))

    def blocks(self, message: InboundMessage) -> bool:
        """Whether the sender of `message` is blocked."""
        return self.is_blocked(message.key.platform, person_of(message))

    def all(self) -> list[BlockedPerson]:
        """Everyone blocked, most recent first."""
        people = []
        for field, value in self._redis.hgetall(self._keys.blocked()).items():
            platform, _, person = _text(field).partition(":")
            try:
                data = json.loads(value)
                people.append(BlockedPerson(Platform(platform), person,
                                            dt.datetime.fromtimestamp(data["at"], dt.UTC),
                                            data.get("note", "")))
            except (ValueError, KeyError):
                continue
        return sorted(people, key=lambda p: p.blocked_at, reverse=True)


class Backlog:
    """Turns whose request went to the model and whose answer has not come back yet."""

    def __init__(self, client: redis.Redis, *, stale_after: float,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        #: Entries older than this belong to turns that died: they are dropped.
        self._stale_after = stale_after

    def add(self, turn_id: str, at: float | None = None) -> None:
        self._redis.zadd(self._keys.backlog(), {turn_id: time.time() if at is None else at},
                         nx=True)

    def done(self, turn_id: str) -> None:
        self._redis.zrem(self._keys.backlog(), turn_id)

    def oldest_age(self) -> float:
        """Seconds the oldest waiting turn has waited (0 when none waits); entries of turns
        that died (older than `stale_after`) are left to `sweep`."""
        now = time.time()
        oldest = self._redis.zrangebyscore(self._keys.backlog(), now - self._stale_after, "+inf",
                                           start=0, num=1, withscores=True)
        return max(now - float(oldest[0][1]), 0.0) if oldest else 0.0

    def sweep(self) -> None:
        """Drop the entries of turns that died (the heartbeat's job, not a turn's)."""
        self._redis.zremrangebyscore(self._keys.backlog(), 0, time.time() - self._stale_after)

    def notice_once(self, key: ConversationKey, window: float) -> bool:
        """True the first time in `window` seconds a conversation is told the bot is busy."""
        return bool(self._redis.set(self._keys.busy_notice(key), "1", nx=True,
                                    ex=max(int(window), 1)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
