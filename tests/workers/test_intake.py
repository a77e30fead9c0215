"""The accept path outside the web app (Telegram polling, the local chats), as the composition
root builds it: the same inbox as the webhooks, MAX_PENDING_MESSAGES included."""

from __future__ import annotations

import redis

from bot.composition import Services
from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from bot.kernel.settings import Settings
from tests.conftest import new_chat_id


def test_polling_and_the_local_chats_honour_max_pending_messages(redis_server):
    url = redis_server.url[:-2] + "/11"
    services = Services(Settings(_env_file=None, redis_url=url, max_pending_messages=3))
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    messages = [InboundMessage(key=key, event_id=f"{chat}-{i}", message_id=str(i),
                               text=f"message {i}") for i in range(5)]
    before = services.metrics.counter("pending_dropped").get('{"platform":"telegram"}', 0.0)
    try:
        assert services.intake.accept(messages) == 5
        waiting = services.conversations.pending(key)
        # The newest three wait; the two oldest were dropped and counted.
        assert [m.message_id for m in waiting] == ["2", "3", "4"]
        dropped = services.metrics.counter("pending_dropped")['{"platform":"telegram"}']
        assert dropped == before + 2
    finally:
        redis.Redis.from_url(url).flushdb()
        services.close()
