"""The accept script (storage/inbox.py) on the in-memory twin of Redis, and on a real one where
its cost is counted: each event once, the backlog capped, and the wake-up published only when
the conversation was idle, in the same script; the same script on the asyncio client; what one
accept costs in Redis commands."""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.conversations import ConversationStore
from storage.inbox import Acceptance, AsyncInbox, Inbox, WakeUp
from storage.keys import KeyBuilder
from tests.conftest import new_chat_id

QUEUE = "test-wake-ups"


def conversation() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.WHATSAPP, bot_id="1", chat_id=chat, user_id=chat)


def message(key: ConversationKey, n: int) -> InboundMessage:
    return InboundMessage(key=key, event_id=f"{key.chat_id}-{n}", message_id=str(n),
                          text=f"m{n}")


def wake(n: int) -> WakeUp:
    return WakeUp(queue=QUEUE, payload=f"wake-up {n}")


def test_an_idle_conversation_is_woken_once_and_again_when_its_turn_ends(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    assert inbox.accept(message(key, 1), wake(1)) == Acceptance.ACCEPTED
    assert inbox.accept(message(key, 2), wake(2)) == Acceptance.ACCEPTED  # a wake-up waits
    assert client.lrange(QUEUE, 0, -1) == [b"wake-up 1"]
    assert not inbox.accept(message(key, 2), wake(3))  # a redelivery: nothing at all
    turn = store.take_turn(key)
    assert turn.status == "taken"
    # During the turn: no wake-up; the turn's end keeps the conversation active with work.
    assert inbox.accept(message(key, 3), wake(4)) == Acceptance.ACCEPTED
    assert client.llen(QUEUE) == 1
    assert store.finish_turn(key, turn.lease) and store.has_work(key)
    second = store.take_turn(key)
    assert [m.text for m in store.turn_messages(key)] == ["m3"]
    assert store.finish_turn(key, second.lease) and not store.has_work(key)
    # Idle again: the next message wakes a worker.
    assert inbox.accept(message(key, 4), wake(5)) == Acceptance.ACCEPTED
    assert client.lrange(QUEUE, 0, -1) == [b"wake-up 5", b"wake-up 1"]
    assert store.active_since(time.time() + 1) == [key]


def test_without_a_wake_up_nothing_is_published(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    key = conversation()
    assert inbox.accept(message(key, 1)) == Acceptance.ACCEPTED
    assert client.llen(QUEUE) == 0
    assert client.llen(KeyBuilder().pending(key)) == 1


def test_the_backlog_is_trimmed_to_its_newest(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60, max_pending=2)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    results = [inbox.accept(message(key, n), wake(n)) for n in range(5)]
    assert results == [Acceptance.ACCEPTED] * 2 + [Acceptance.ACCEPTED_DROPPED_OLDEST] * 3
    assert [m.text for m in store.pending(key)] == ["m3", "m4"]
    assert client.lrange(QUEUE, 0, -1) == [b"wake-up 0"]


def test_the_asyncio_inbox_runs_the_same_script(redis_server):
    url = redis_server.url[:-2] + "/14"

    async def scenario() -> tuple[list[Acceptance], list[bytes]]:
        client = redis.asyncio.Redis.from_url(url)
        try:
            inbox = AsyncInbox(client, dedupe_ttl=60, pending_ttl=60, max_pending=2)
            key = conversation()
            got = [await inbox.accept(message(key, n), wake(n)) for n in (1, 1, 2, 3)]
            return got, await client.lrange(QUEUE, 0, -1)
        finally:
            await client.flushdb()
            await client.aclose()

    got, queued = asyncio.run(scenario())
    assert got == [Acceptance.ACCEPTED, Acceptance.DUPLICATE, Acceptance.ACCEPTED,
                   Acceptance.ACCEPTED_DROPPED_OLDEST]
    assert queued == [b"wake-up 1"]


def test_an_accept_is_one_script_of_five_or_six_commands(own_client):
    inbox = Inbox(own_client, dedupe_ttl=60, pending_ttl=60)
    key = conversation()
    inbox.accept(message(key, 0), wake(0))  # loads the script

    def cost(n: int) -> dict[str, int]:
        before = own_client.info("commandstats")
        inbox.accept(message(key, n), wake(n))
        after = own_client.info("commandstats")
        return {k.removeprefix("cmdstat_"): after[k]["calls"] - before.get(k, {"calls": 0})[
            "calls"] for k in after if k != "cmdstat_info"
            and after[k]["calls"] != before.get(k, {"calls": 0})["calls"]}

    # Active already (the first message's wake-up waits): no publish.
    assert cost(1) == {"evalsha": 1, "set": 1, "rpush": 1, "expire": 1, "zadd": 1}
    own_client.zrem("sealion:active", key.model_dump_json())
    assert cost(2) == {"evalsha": 1, "set": 1, "rpush": 1, "expire": 1, "zadd": 1, "lpush": 1}


def test_a_duplicate_refreshes_its_dedupe_key(client):
    """A duplicate writes (its key's expiry), so a WAIT after it on the same connection covers
    the original accept, made on another connection (REDIS_MIN_REPLICAS_ACK; the real
    replica's side is tests/storage/test_replica_ack.py)."""
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    key = conversation()
    assert inbox.accept(message(key, 1), wake(1)) == Acceptance.ACCEPTED
    dedupe = KeyBuilder().dedupe(key.platform, key.bot_id, message(key, 1).event_id)
    client.expire(dedupe, 5)
    assert inbox.accept(message(key, 1), wake(2)) == Acceptance.DUPLICATE
    assert client.ttl(dedupe) > 5
    assert client.llen(KeyBuilder().pending(key)) == 1 and client.llen(QUEUE) == 1
