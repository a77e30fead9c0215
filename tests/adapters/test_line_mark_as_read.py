"""LineAdapter.send marks the answered message read with its markAsReadToken, once the answer is
sent, against the LINE stand-in (checked with the vendored Messaging API spec)."""

from __future__ import annotations

import asyncio
import time

from adapters.line import LineAdapter
from bot.kernel.messages import ConversationKey, LineContext, Platform, Reply
from bot.kernel.settings import Settings
from tests.adapters.test_local import MemoryLog
from tests.conftest import LINE_TOKEN

USER = "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"


def _send(line, context: LineContext) -> MemoryLog:
    settings = Settings(line_channel_secret="s", line_channel_access_token=LINE_TOKEN,
                        line_api_base_url=line.base_url, line_data_api_base_url=line.base_url)
    adapter = LineAdapter(settings)
    key = ConversationKey(platform=Platform.LINE, bot_id="U1", chat_id=USER, user_id=USER)
    reply = Reply(key=key, in_reply_to="m1", language="en", text="Hello!", reply_context=context)
    log = MemoryLog()

    async def run() -> None:
        try:
            await adapter.send(reply, log)
        finally:
            await adapter.aclose()

    asyncio.run(run())
    return log


def _context(line, mark_as_read_token: str | None) -> LineContext:
    return LineContext(to=USER, reply_token=line.issue_reply_token(USER),
                       reply_token_expires_at=time.time() + 50,
                       mark_as_read_token=mark_as_read_token)


def test_an_answered_message_is_marked_read_after_the_answer(line):
    log = _send(line, _context(line, "30yhdy232KFDHgdkdsFg"))
    assert log.sent == {0} and line.sent_texts(USER) == ["Hello!"]
    assert line.marked_read() == ["30yhdy232KFDHgdkdsFg"]
    assert [c.name for c in line.calls] == ["reply", "mark_as_read"]


def test_without_a_token_nothing_is_marked(line):
    _send(line, _context(line, None))
    assert line.sent_texts(USER) == ["Hello!"] and line.calls_to("mark_as_read") == []


def test_a_refused_mark_as_read_does_not_fail_the_answer(line):
    line.fail_next("mark_as_read", 400, "Invalid markAsReadToken")
    log = _send(line, _context(line, "spent-token"))
    assert log.sent == {0} and line.sent_texts(USER) == ["Hello!"]
    assert [c.status for c in line.calls_to("mark_as_read")] == [400]
