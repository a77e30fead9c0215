"""REDIS_MIN_REPLICAS_ACK on a real master and replica (tests/helpers/redis_group.py): an accept
is acknowledged only once the replica holds it (WAIT, in the script's pipeline); without the
replica in time the webhook answers 503 with Retry-After, and the platform's retry of the same
event, a duplicate by then, is acknowledged once the replica is back, with the message queued
once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from fastapi.testclient import TestClient

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from bot.kernel.settings import Settings
from bot.web.app import create_app
from storage.inbox import Acceptance, AsyncInbox, Inbox, NotReplicated
from storage.keys import KeyBuilder
from tests.conftest import TELEGRAM_TOKEN, new_chat_id
from tests.helpers.redis_group import RedisGroup
from tests.helpers.updates import text_update
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.integration
SECRET = secrets.token_urlsafe(24)


@pytest.fixture()
def group(tmp_path: Path) -> Iterator[RedisGroup]:
    started = RedisGroup(tmp_path / "group", replicas=1, sentinels=0)
    try:
        yield started.start()
    finally:
        started.stop()


def message(key: ConversationKey, n: int) -> InboundMessage:
    return InboundMessage(key=key, event_id=f"{key.chat_id}-{n}", message_id=str(n),
                          text=f"m{n}")


def conversation() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.WHATSAPP, bot_id="1", chat_id=chat, user_id=chat)


def back_in_sync(group: RedisGroup) -> None:
    group.restart("replica0")
    master = group.node("master")
    wait_until(lambda: master.info("replication")["connected_slaves"] == 1, timeout=20,
               what="the replica did not come back")
    replica = group.node("replica0")

    def synced() -> bool:
        try:
            return replica.info("replication")["master_link_status"] == "up"
        except redis.ConnectionError:  # still starting
            return False

    wait_until(synced, timeout=20, what="the replica did not sync")


def test_an_accept_is_acknowledged_only_once_the_replica_holds_it(group: RedisGroup) -> None:
    master, replica = group.node("master"), group.node("replica0")
    inbox = Inbox(master, dedupe_ttl=60, pending_ttl=60, replicas=1, wait_ms=2000)
    key = conversation()
    assert inbox.accept(message(key, 1)) == Acceptance.ACCEPTED
    # WAIT returned 1: the replica has the message now, without any further wait.
    assert replica.llen(KeyBuilder().pending(key)) == 1

    group.kill("replica0")
    with pytest.raises(NotReplicated):
        inbox.accept(message(key, 2))
    # Written on the master (it may be replicated later), not acknowledged.
    assert master.llen(KeyBuilder().pending(key)) == 2

    back_in_sync(group)
    # The platform's retry: a duplicate, refreshed (a write), so WAIT covers the original.
    assert inbox.accept(message(key, 2)) == Acceptance.DUPLICATE
    assert group.node("replica0").llen(KeyBuilder().pending(key)) == 2  # queued once


def test_a_new_master_without_the_script_loads_it(group: RedisGroup) -> None:
    """After a failover the promoted replica has not got the master's script cache."""
    master = group.node("master")
    inbox = Inbox(master, dedupe_ttl=60, pending_ttl=60, replicas=1, wait_ms=2000)
    key = conversation()
    assert inbox.accept(message(key, 1)) == Acceptance.ACCEPTED
    master.script_flush()
    assert inbox.accept(message(key, 2)) == Acceptance.ACCEPTED

    async def on_the_loop() -> Acceptance:
        client = redis.asyncio.Redis.from_url(group.url("master"))
        try:
            async_inbox = AsyncInbox(client, dedupe_ttl=60, pending_ttl=60, replicas=1,
                                     wait_ms=2000)
            await client.script_flush()
            return await async_inbox.accept(message(key, 3))
        finally:
            await client.aclose()

    assert asyncio.run(on_the_loop()) == Acceptance.ACCEPTED
    assert group.node("replica0").llen(KeyBuilder().pending(key)) == 3


def test_the_webhook_answers_503_until_a_replica_holds_the_message(group: RedisGroup,
                                                                     telegram_api,
                                                                     tmp_path: Path) -> None:
    settings = Settings(_env_file=None, redis_url=group.url("master"),  # type: ignore[call-arg]
                        telegram_bot_token=TELEGRAM_TOKEN, telegram_webhook_secret=SECRET,
                        telegram_api_base_url=telegram_api.base_url,
                        metrics_flush_seconds=3600, data_dir=str(tmp_path / "data"),
                        redis_min_replicas_ack=1, redis_wait_timeout_ms=300)
    update = text_update(new_chat_id(), "Halo?")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as api:
        group.kill("replica0")
        refused = api.post("/webhooks/telegram", json=update, headers=headers)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        back_in_sync(group)
        assert api.post("/webhooks/telegram", json=update, headers=headers).status_code == 200
    # Accepted once: one wake-up on the replica (and so on any master it becomes).
    assert group.node("replica0").llen("io") == 1
