"""The polling offset of a bot: the next update id to ask the platform for (Redis).

Telegram itself forgets an update once getUpdates is called with a higher offset, and keeps
unconfirmed ones for 24 hours; the saved offset lets a restarted poller resume exactly where
the last one stopped. It expires after a day, because after a week without updates Telegram
may start its update ids afresh, lower than an old offset.
"""

from __future__ import annotations

import redis

from bot.kernel.messages import Platform
from storage.keys import KeyBuilder

OFFSET_TTL_SECONDS = 24 * 3600


class PollOffsets:
    """`load` / `save` of `adapters.telegram_polling.OffsetStore`, one key per bot."""

    def __init__(self, client: redis.Redis, platform: Platform, bot_id: str,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._key = (keys or KeyBuilder()).poll_offset(platform, bot_id)

    def load(self) -> int | None:
        value = self._redis.get(self._key)
        return int(value) if value is not None else None  # type: ignore[arg-type]

    def save(self, offset: int) -> None:
        self._redis.set(self._key, offset, ex=OFFSET_TTL_SECONDS)
