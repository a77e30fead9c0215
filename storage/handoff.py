"""Hand-off holds: while a person from the team answers a conversation, the bot stays quiet.

    sealion:conv:{conversation}:handoff   the `Hold` JSON, EX the hold's time to live
    sealion:handoffs                      conversation key JSON -> when its hold expires

The hold key's TTL *is* the timeout: a hold with no operator activity for HANDOFF_TTL_SECONDS
loses its key, and the next message is answered by the bot again, with the whole history. The
turn reads the key in `ConversationStore.start_turn`'s script, inside an MGET it does anyway
(0 extra commands a turn). The sorted set is only the console's index of live holds: its score
is the expiry, so a count is one ZCOUNT.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Literal, cast

import redis

from bot.kernel.messages import ConversationKey
from storage.keys import KeyBuilder

By = Literal["person", "admin"]


@dataclass(frozen=True)
class Hold:
    """A conversation held for a person of the team."""

    id: str
    since: float
    by: str
    #: The console user who took over or last replied (None: nobody yet).
    operator: str | None = None
    #: The turn whose /human (or request in words) started the hold: that turn itself, resumed
    #: after a crash, is not held (it carries the notice).
    turn: str | None = None
    #: When an operator last replied.
    replied: float | None = None
    #: Whether the person was told a person will reply.
    notified: bool = False
    #: When the hold ends without more operator activity (set when read from the index).
    expires: float = 0.0

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("expires")
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Hold | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return None


def _member(key: ConversationKey) -> str:
    return key.model_dump_json()


# KEYS: handoff.  Marks the hold's notice given, keeping the TTL; 1 when this call did.
_CLAIM_NOTICE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local hold = cjson.decode(raw)
if hold['notified'] == true then return 0 end
hold['notified'] = true
redis.call('SET', KEYS[1], cjson.encode(hold), 'KEEPTTL')
return 1
"""


class HandoffStore:
    def __init__(self, client: redis.Redis, *, ttl: int, keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self.ttl = max(int(ttl), 1)
        self._claim = client.register_script(_CLAIM_NOTICE)

    def claim_notice(self, key: ConversationKey) -> bool:
        """Whether the caller tells the person a person will reply (the first to ask does)."""
        return bool(int(self._claim(keys=[self._keys.handoff(key)])))

    def start(self, key: ConversationKey, *, by: By, operator: str | None = None,
              turn: str | None = None, notified: bool = False) -> Hold:
        """Hold the conversation (or keep an existing hold, re-armed): returns the hold."""
        now = time.time()
        current = self.get(key)
        hold = replace(current, operator=operator or current.operator) if current else Hold(
            id=uuid.uuid4().hex, since=now, by=by, operator=operator, turn=turn,
            notified=notified)
        self._write(key, hold, now)
        return replace(hold, expires=now + self.ttl)

    def touch(self, key: ConversationKey, operator: str) -> Hold | None:
        """An operator acted: the hold runs another full TTL. None when not held."""
        current = self.get(key)
        if current is None:
            return None
        now = time.time()
        hold = replace(current, operator=operator, replied=now)
        self._write(key, hold, now)
        return replace(hold, expires=now + self.ttl)

    def release(self, key: ConversationKey) -> Hold | None:
        """End the hold now: the bot answers the next message."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._keys.handoff(key))
        pipe.delete(self._keys.handoff(key))
        pipe.zrem(self._keys.handoffs(), _member(key))
        return Hold.from_json(pipe.execute()[0])

    def get(self, key: ConversationKey) -> Hold | None:
        return Hold.from_json(cast("bytes | None", self._redis.get(self._keys.handoff(key))))

    def live(self, limit: int = 200) -> list[tuple[ConversationKey, Hold]]:
        """The live holds, the oldest expiry first (one ZRANGEBYSCORE, one MGET)."""
        now = time.time()
        raw = cast("list[tuple[bytes, float]]", self._redis.zrangebyscore(
            self._keys.handoffs(), now, "+inf", start=0, num=limit, withscores=True))
        if not raw:
            return []
        keys = [ConversationKey.model_validate_json(m) for m, _ in raw]
        values = self._redis.mget([self._keys.handoff(k) for k in keys])
        found = []
        for key, (_, expires), value in zip(keys, raw, values, strict=True):
            hold = Hold.from_json(value)
            if hold is not None:
                found.append((key, replace(hold, expires=expires)))
        return found

    def count(self) -> int:
        """How many conversations are held (one ZCOUNT); expired index entries are pruned
        now and then by `live`'s callers through `prune`."""
        return int(self._redis.zcount(self._keys.handoffs(), time.time(), "+inf"))

    def prune(self) -> int:
        """Drop index entries of holds that timed out."""
        return int(self._redis.zremrangebyscore(self._keys.handoffs(), "-inf", time.time()))

    def _write(self, key: ConversationKey, hold: Hold, now: float) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys.handoff(key), hold.to_json(), ex=self.ttl)
        pipe.zadd(self._keys.handoffs(), {_member(key): now + self.ttl})
        pipe.execute()
