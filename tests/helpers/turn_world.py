"""A turn service on a Redis (the in-memory twin of the unit tier, or a database of the suite's
redis-server) and a real SQLite log, with a recording adapter and a scripted engine (the
platform and the model are the only stand-ins), for tests that follow whole turns: messages
accepted into the inbox, the turn started, generated and delivered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from bot.kernel.messages import ConversationKey, InboundMessage, Platform, TelegramContext
from bot.kernel.settings import Settings
from storage.abuse import AbuseScreen, Backlog
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.inbox import Inbox
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.conftest import new_chat_id
from tests.helpers.twins import twin_redis
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.protocol import Deliver, Generate
from workers.turn import TurnService, assemble


class TurnWorld:
    """`client` (a new in-memory twin of Redis unless given), or database `db` of the Redis at
    `redis_url` (emptied on start and on `close`); a log under `folder`, and `adapter` (a
    `RecordingAdapter` unless given) for every platform."""

    def __init__(self, redis_url: str | None, folder: Path, *, db: int = 12,
                 adapter: RecordingAdapter | None = None,
                 client: redis.Redis | None = None) -> None:
        url = f"{redis_url.rsplit('/', 1)[0]}/{db}" if redis_url else None
        self.client = client or (redis.Redis.from_url(url) if url else twin_redis())
        self.client.flushdb()
        database_url = f"sqlite:///{folder}/log.db"
        upgrade_database(database_url)
        self.settings = Settings(database_url=database_url, reply_language_check=False,
                                 busy_notice_seconds=0, **({"redis_url": url} if url else {}))
        self.store = ConversationStore(self.client, lease_seconds=30)
        self.adapter = adapter or RecordingAdapter(self.settings)
        self.log = ConversationLog(database_url)
        self.metrics = RedisMetrics(self.client)
        self.inbox = Inbox(self.client, dedupe_ttl=60, pending_ttl=60)
        self._loop = asyncio.new_event_loop()

    def service(self, *answers: str, limit: int = 20) -> TurnService:
        """A turn service whose engine gives `answers` in order, with the block list and a
        rate limit of `limit` messages a minute."""
        engine = self.engine = ScriptedEngine(*answers)
        return assemble(
            self.settings, store=self.store,
            history=RedisHistory(self.client, ttl=600, max_turns=20),
            conversation_log=self.log, metrics=self.metrics,
            adapters=lambda platform: self.adapter, engine=lambda: engine,
            run=self._loop.run_until_complete,
            leases=LeaseKeeper(self.store, max_hold_seconds=60),
            abuse=AbuseScreen(self.client, messages=limit, window_seconds=60),
            backlog=Backlog(self.client, stale_after=60))

    def arrive(self, *texts: str, chat: str | None = None,
               hint: str | None = "en") -> ConversationKey:
        """Accept a private Telegram-style message for each text (in a new chat unless
        `chat`); returns the conversation's key."""
        chat = chat or str(new_chat_id())
        key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat,
                              user_id=chat)
        for body in texts:
            number = str(time.monotonic_ns())
            self.accept(InboundMessage(
                key=key, event_id=f"{chat}-{number}", message_id=number, text=body,
                language_hint=hint,
                reply_context=TelegramContext(chat_id=int(chat), message_id=int(number))))
        return key

    def accept(self, message: InboundMessage) -> None:
        self.inbox.accept(message)

    def turn(self, service: TurnService, key: ConversationKey) -> None:
        """Run the conversation's next turn to its end."""
        step = service.start(key)
        if isinstance(step, Generate):
            service.deliver(step.turn, step.lease, service.generate(step.job))
            return
        assert isinstance(step, Deliver), step
        service.deliver(step.turn, step.lease, step.outcome)

    def close(self) -> None:
        self._loop.close()
        self.log.close()
        self.client.flushdb()
        self.client.close()
