"""Per-conversation history in Redis: turns with text and image references, and the images.

A conversation idle for `ttl` seconds is forgotten: every write refreshes the TTL of the history
list and of its images together, so a follow-up question about "the photo" still finds it.
History is trimmed to `max_turns` entries on write and to a token budget on read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Literal, cast

import redis
from pydantic import BaseModel, ConfigDict, Field

from bot.kernel.messages import ConversationKey
from storage.keys import KeyBuilder

# KEYS: marker, history.  ARGV: ttl, max turns, entries...
# A tombstone (the time a person's data was deleted) stops writes of what arrived before it.
_ERASED = """
local erased = redis.call('GET', KEYS[3])
if erased and tonumber(erased) >= tonumber(ARGV[3]) then return 0 end
"""

# KEYS: once marker, history, erased (the person's tombstone).
# ARGV: ttl, max turns, since (when the turn's first message arrived), entries.
_APPEND_ONCE = _ERASED + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 86400) then return 0 end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
if tonumber(ARGV[2]) > 0 then
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
else
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


# The conversation's images are named in a sorted set (id -> when saved), so that neither `touch`
# nor `clear` has to read the history or scan the keyspace. KEYS: history, image set.
# ARGV: ttl, image key prefix.
_TOUCH = """
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('EXPIRE', KEYS[2], ARGV[1]) == 0 then return 0 end
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  redis.call('EXPIRE', ARGV[2] .. id, ARGV[1])
end
return 1
"""

# KEYS: image, image set, erased.
# ARGV: ttl, image id, since, max images, image key prefix, data, now.
_SAVE_IMAGE = _ERASED + """
redis.call('SET', KEYS[1], ARGV[6], 'EX', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('DEL', ARGV[5] .. id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""

# KEYS: history, image set.  ARGV: image key prefix.  Returns how many keys went.
_CLEAR = """
local gone = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  gone = gone + redis.call('DEL', ARGV[1] .. id)
end
return gone + redis.call('DEL', KEYS[1], KEYS[2])
"""


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    text: str
    image_ids: tuple[str, ...] = ()
    language: str | None = None
    at: float = Field(default_factory=time.time)
    #: A user turn the person spoke (its text is a voice note's transcript, maybe with text).
    spoken: bool = False


def estimate_tokens(entry: HistoryEntry, tokens_per_image: int = 256) -> int:
    """A cheap token estimate: about 4 characters a token, plus a fixed cost per image."""
    return len(entry.text) // 4 + 1 + tokens_per_image * len(entry.image_ids)


def parse_entries(raw: Iterable[bytes | str], max_tokens: int | None = None
                  ) -> list[HistoryEntry]:
    """History entries from their stored JSON (oldest first): the newest that fit `max_tokens`
    (estimated), never starting with an answer whose question was dropped. A turn reads them
    with its start (`ConversationStore.start_turn`), so this is where they become entries."""
    entries = [HistoryEntry.model_validate_json(item) for item in raw]
    if max_tokens is None:
        return entries
    kept: list[HistoryEntry] = []
    budget = max_tokens
    for entry in reversed(entries):
        cost = estimate_tokens(entry)
        if cost > budget:
            break
        budget -= cost
        kept.append(entry)
    kept.reverse()
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept


class RedisHistory:
    def __init__(self, client: redis.Redis, *, ttl: int, max_turns: int,
                 keys: KeyBuilder | None = None, max_images: int | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._ttl = ttl
        self._max_turns = max_turns
        #: Photos kept per conversation: enough for every entry of a full history.
        self._max_images = max_images if max_images is not None else max(16, 4 * max_turns)

    def load(self, key: ConversationKey, *, max_tokens: int | None = None) -> list[HistoryEntry]:
        """Oldest first; the newest entries that fit `max_tokens` (estimated)."""
        return parse_entries(self._redis.lrange(self._keys.history(key), 0, -1), max_tokens)

    def append(self, key: ConversationKey, *entries: HistoryEntry,
               once: str | None = None, since: float = 0.0) -> bool:
        """Append `entries`; with `once` (a marker key), only if that marker is not set yet,
        setting it in the same transaction (a turn's history is written exactly once).
        `since` is when the turn's first message arrived: if the person's data was deleted
        after that, nothing is written. Returns whether the entries were written."""
        name = self._keys.history(key)
        if once is not None:
            written = self._redis.register_script(_APPEND_ONCE)(
                keys=[once, name, self._erased(key)],
                args=[self._ttl, self._max_turns, since,
                      *(e.model_dump_json() for e in entries)])
            if written:
                self.touch(key)
            return bool(written)
        if self._erased_since(key, since):
            return False
        pipe = self._redis.pipeline()
        for entry in entries:
            pipe.rpush(name, entry.model_dump_json())
        if self._max_turns:
            pipe.ltrim(name, -self._max_turns, -1)
        else:
            pipe.delete(name)
        pipe.expire(name, self._ttl)
        pipe.execute()
        self.touch(key)
        return True

    def _erased(self, key: ConversationKey) -> str:
        """The tombstone of the conversation's person: while it lives (a deletion just ran),
        a turn still in flight writes neither history nor photos. Groups have no person here
        (their history is shared): the name of a key that is never set."""
        return self._keys.erased(key.platform, key.user_id)

    def _erased_since(self, key: ConversationKey, since: float) -> bool:
        """Whether the person's data was deleted after `since` (what arrived before is gone)."""
        erased = self._redis.get(self._erased(key))
        return erased is not None and float(erased) >= since

    def touch(self, key: ConversationKey) -> None:
        """Refresh the TTL of the history, of the conversation's image set and of its images
        (the set names them: the history list is not read)."""
        self._redis.register_script(_TOUCH)(
            keys=[self._keys.history(key), self._keys.images(key)],
            args=[self._ttl, self._keys.image(key, "")])

    def save_image(self, key: ConversationKey, data: bytes, since: float = 0.0) -> str:
        """Keep a photo for the conversation; its id goes into the conversation's image set,
        which keeps the newest `max_images` (older ones are deleted). Not kept when the
        person's data was deleted after `since` (when the photo's turn began)."""
        image_id = uuid.uuid4().hex
        self._redis.register_script(_SAVE_IMAGE)(
            keys=[self._keys.image(key, image_id), self._keys.images(key), self._erased(key)],
            args=[self._ttl, image_id, since, self._max_images, self._keys.image(key, ""),
                  data, time.time()])
        return image_id

    def image(self, key: ConversationKey, image_id: str) -> bytes | None:
        value = self._redis.get(self._keys.image(key, image_id))
        return bytes(cast(bytes, value)) if value is not None else None

    def clear(self, key: ConversationKey) -> int:
        """Forget the conversation's history and images; returns how many keys went."""
        return int(self._redis.register_script(_CLEAR)(
            keys=[self._keys.history(key), self._keys.images(key)],
            args=[self._keys.image(key, "")]))
