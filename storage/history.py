"""Per-conversation history in Redis: turns with text and image references, and the images.

A conversation idle for `ttl` seconds is forgotten: every write refreshes the TTL of the history
list and of its images together, so a follow-up question about "the photo" still finds it.
History is trimmed to `max_turns` entries on write and to a token budget on read.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal, cast

import redis
from pydantic import BaseModel, ConfigDict, Field

from bot.messages import ConversationKey
from storage.keys import KeyBuilder


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    text: str
    image_ids: tuple[str, ...] = ()
    language: str | None = None
    at: float = Field(default_factory=time.time)


def estimate_tokens(entry: HistoryEntry, tokens_per_image: int = 256) -> int:
    """A cheap token estimate: about 4 characters a token, plus a fixed cost per image."""
    return len(entry.text) // 4 + 1 + tokens_per_image * len(entry.image_ids)


class RedisHistory:
    def __init__(self, client: redis.Redis, *, ttl: int, max_turns: int,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._ttl = ttl
        self._max_turns = max_turns

    def load(self, key: ConversationKey, *, max_tokens: int | None = None) -> list[HistoryEntry]:
        """Oldest first; the newest entries that fit `max_tokens` (estimated)."""
        raw = self._redis.lrange(self._keys.history(key), 0, -1)
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
        # A history must not start with the assistant's answer to a question we dropped.
        while kept and kept[0].role == "assistant":
            kept.pop(0)
        return kept

    def append(self, key: ConversationKey, *entries: HistoryEntry) -> None:
        name = self._keys.history(key)
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

    def touch(self, key: ConversationKey) -> None:
        """Refresh the TTL of the history and of every image it references."""
        ids = {i for e in self.load(key) for i in e.image_ids}
        pipe = self._redis.pipeline()
        pipe.expire(self._keys.history(key), self._ttl)
        for image_id in ids:
            pipe.expire(self._keys.image(key, image_id), self._ttl)
        pipe.execute()

    def save_image(self, key: ConversationKey, data: bytes) -> str:
        image_id = uuid.uuid4().hex
        self._redis.set(self._keys.image(key, image_id), data, ex=self._ttl)
        return image_id

    def image(self, key: ConversationKey, image_id: str) -> bytes | None:
        value = self._redis.get(self._keys.image(key, image_id))
        return bytes(cast(bytes, value)) if value is not None else None

    def clear(self, key: ConversationKey) -> int:
        """Forget the conversation's history and images; returns how many keys went."""
        names = [self._keys.history(key)]
        names += list(self._redis.scan_iter(match=self._keys.image_pattern(key), count=500))
        return int(self._redis.delete(*names))
