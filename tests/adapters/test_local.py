"""The console and web adapters behind the adapter contract, on a real Redis: parsing, uploads,
sending each part once (the delivery log covers the end marker too), typing, limits."""

from __future__ import annotations

import asyncio

import pytest
import redis

from adapters.base import MediaError, MediaTooLarge, PayloadError, SignatureError, adapter_class
from adapters.local import ConsoleAdapter, LocalImage, LocalMessage, WebAdapter
from bot.kernel.messages import Platform, Reply
from bot.kernel.settings import Settings
from storage.mailbox import LocalMailbox


class MemoryLog:
    """A delivery log in memory (the pipeline's is in Redis)."""

    def __init__(self) -> None:
        self.sent: set[int] = set()

    def is_sent(self, part: int) -> bool:
        return part in self.sent

    def mark_sent(self, part: int, message_id: str | None = None) -> None:
        self.sent.add(part)


@pytest.fixture()
def mailbox(redis_server):
    # Database 13: the unit tests' range (11-15), flushed by each test.
    client = redis.Redis.from_url(f"{redis_server.url[:-2]}/13")
    client.flushdb()
    yield LocalMailbox(client, upload_ttl=60, outbox_ttl=60)
    client.flushdb()
    client.close()


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


def test_registered_and_enabled_as_configured():
    assert adapter_class(Platform.CONSOLE) is ConsoleAdapter
    assert adapter_class(Platform.WEB) is WebAdapter
    assert ConsoleAdapter.enabled(settings())
    assert not WebAdapter.enabled(settings()) and WebAdapter.enabled(settings(web_chat=True))
    assert Platform.CONSOLE.local and Platform.WEB.local and not Platform.TELEGRAM.local


def test_parse_builds_one_message_in_its_own_conversation(mailbox):
    adapter = ConsoleAdapter(settings(), mailbox)
    body = LocalMessage(chat="siti", text="Apa khabar?", language_hint="ms",
                        images=(LocalImage(ref="abc", mime_type="image/png", size=10),)
                        ).model_dump_json().encode()
    [message] = adapter.parse(body)
    assert message.key.platform == Platform.CONSOLE and message.key.chat_id == "siti"
    assert message.key.bot_id == "local" and message.key.user_id == "siti"
    assert message.text == "Apa khabar?" and message.language_hint == "ms"
    assert [a.ref for a in message.attachments] == ["abc"]
    assert message.event_id == message.message_id
    with pytest.raises(PayloadError):
        adapter.parse(b'{"chat": ""}')
    with pytest.raises(PayloadError):
        adapter.parse(b"not json")
    with pytest.raises(SignatureError):
        adapter.verify({}, b"{}")  # local messages never come through a webhook


def test_uploads_are_fetched_within_the_limit(mailbox):
    adapter = WebAdapter(settings(max_download_bytes=2048), mailbox)
    ref = mailbox.upload(b"x" * 100)
    assert asyncio.run(adapter.fetch_media(ref, 100)) == b"x" * 100
    with pytest.raises(MediaTooLarge):
        asyncio.run(adapter.fetch_media(ref, 4096))
    big = mailbox.upload(b"x" * 4096)
    with pytest.raises(MediaTooLarge):
        asyncio.run(adapter.fetch_media(big))
    with pytest.raises(MediaError):
        asyncio.run(adapter.fetch_media("expired-or-unknown"))


def test_send_posts_each_part_once_then_the_end(mailbox):
    adapter = ConsoleAdapter(settings(), mailbox)
    key = adapter.key("budi")
    reply = Reply(key=key, in_reply_to="m1", language="id", notices=("Beres!",),
                  text="**Nasi goreng** pakai kecap manis.")
    log = MemoryLog()
    before = mailbox.last_id(key)

    async def go() -> None:
        await adapter.indicate_typing(key, {})
        await adapter.send(reply, log)
        await adapter.send(reply, log)  # a retried send adds nothing

    asyncio.run(go())
    events = [e for _, e in mailbox.read(key, before)]
    assert [e["type"] for e in events] == ["typing", "message", "message", "end"]
    assert events[1] == {"type": "message", "text": "Beres!", "formatted": "0",
                         "in_reply_to": "m1"}
    assert events[2]["text"] == "**Nasi goreng** pakai kecap manis."
    assert events[2]["formatted"] == "1"
    assert events[3] == {"type": "end", "in_reply_to": "m1", "language": "id"}
    assert log.sent == {0, 1, 2}
    # Another conversation's outbox is its own.
    assert mailbox.read(adapter.key("other")) == []
