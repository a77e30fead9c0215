"""Send failures are classified, never left to escape: an unreachable platform is a transient
error (retried with backoff), a Retry-After header in either HTTP form is understood."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from adapters.base import TransientSendError, retry_after_seconds
from adapters.line import LineAdapter
from adapters.telegram import TelegramAdapter
from bot.cli.embedded_redis import free_port
from bot.kernel.messages import ConversationKey, LineContext, Platform, Reply, TelegramContext
from bot.kernel.settings import Settings


class _Log:
    def is_sent(self, part: int) -> bool:
        return False

    def mark_sent(self, part: int, message_id: str | None = None) -> None:
        raise AssertionError("nothing can have been sent")


def _reply(platform: Platform) -> Reply:
    key = ConversationKey(platform=platform, bot_id="1", chat_id="42", user_id="42")
    context = (TelegramContext(chat_id=42, message_id=1) if platform is Platform.TELEGRAM
               else LineContext(to="42"))
    return Reply(key=key, in_reply_to="1", language="en", text="hello", reply_context=context)


@pytest.mark.parametrize("platform", [Platform.TELEGRAM, Platform.LINE])
def test_a_platform_refusing_connections_is_a_transient_error(platform):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = Settings(telegram_bot_token="7000001:AAtest", telegram_api_base_url=closed,
                        line_channel_secret="s", line_channel_access_token="t",
                        line_api_base_url=closed, platform_timeout_seconds=5,
                        platform_connect_timeout_seconds=2)
    adapter = (TelegramAdapter(settings) if platform == Platform.TELEGRAM
               else LineAdapter(settings))

    async def send() -> None:
        try:
            await adapter.send(_reply(platform), _Log())
        finally:
            await adapter.aclose()

    started = time.monotonic()
    with pytest.raises(TransientSendError) as raised:
        asyncio.run(send())
    assert raised.value.code == "network" and raised.value.retry_after > 0
    assert time.monotonic() - started < 10


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds("7", 2.0) == 7.0
    assert retry_after_seconds(None, 2.0) == 2.0
    assert retry_after_seconds("soon", 2.0) == 2.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later, 2.0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after_seconds(past, 2.0) == 0.0
