"""The accept path for channels that are not webhooks (Telegram polling, the local chats).

`Intake.accept` is `bot.webhooks.accept_messages` with its own Redis client, inbox, broker
and metrics, built from the settings: a process that is not the API (`sealion-bot poll`,
`sealion-bot chat`) accepts messages exactly as the webhook does.
"""

from __future__ import annotations

import redis

from bot.messages import InboundMessage
from bot.settings import Settings
from bot.webhooks import accept_messages
from storage.conversations import Inbox
from storage.metrics import RedisMetrics
from workers.celery_app import create_celery


class Intake:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or redis.Redis.from_url(settings.effective_redis_url,
                                                    socket_timeout=10, socket_connect_timeout=5)
        self.inbox = Inbox(self.redis, dedupe_ttl=settings.dedupe_ttl_seconds,
                           pending_ttl=settings.turn_timeout_seconds * 4)
        self.metrics = RedisMetrics(self.redis)
        self.celery = create_celery(settings)

    def accept(self, messages: list[InboundMessage]) -> int:
        """Accept each message once (blocking); raises on Redis or broker errors."""
        return accept_messages(self.inbox, self.celery, self.metrics, messages,
                               self.settings.album_window_seconds)

    def close(self) -> None:
        self.redis.close()
