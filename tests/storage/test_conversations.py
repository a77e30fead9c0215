"""The turn lifecycle on a real Redis: accept once, one turn at a time, resume after a crash."""

from __future__ import annotations

import time

import pytest
import redis

from bot.messages import ConversationKey, InboundMessage, Platform
from storage.conversations import ConversationStore, Inbox, WorkerRegistry
from storage.history import HistoryEntry, RedisHistory
from tests.conftest import new_chat_id


@pytest.fixture()
def client(redis_server):
    c = redis.Redis.from_url(redis_server.url[:-2] + "/14")
    yield c
    c.flushdb()
    c.close()


def message(key: ConversationKey, n: int, **kw) -> InboundMessage:
    return InboundMessage(key=key, event_id=f"ev{n}", message_id=str(n), text=f"m{n}", **kw)


def conversation() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)


def test_inbox_accepts_each_event_once(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, turn_ttl=30)
    key = conversation()
    assert inbox.accept(message(key, 1)) is True
    assert inbox.accept(message(key, 1)) is False
    assert [m.text for m in store.pending(key)] == ["m1"]


def test_one_turn_at_a_time_and_late_messages_wait(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, turn_ttl=30)
    key = conversation()
    inbox.accept(message(key, 1))
    inbox.accept(message(key, 2))
    first = store.take_turn(key)
    assert first.status == "taken"
    assert [m.text for m in store.turn_messages(key)] == ["m1", "m2"]

    inbox.accept(message(key, 3))
    busy = store.take_turn(key)
    assert busy.status == "busy" and busy.turn_id == first.turn_id and 0 < busy.retry_after <= 30

    assert store.finish_turn(key, "not-the-turn") is False
    assert store.finish_turn(key, first.turn_id) is True
    assert store.has_work(key)
    second = store.take_turn(key)
    assert second.status == "taken" and second.turn_id != first.turn_id
    assert [m.text for m in store.turn_messages(key)] == ["m3"]
    store.finish_turn(key, second.turn_id)
    assert store.take_turn(key).status == "idle"


def test_an_abandoned_turn_is_resumed_after_its_lock_expires(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, turn_ttl=1)
    key = conversation()
    inbox.accept(message(key, 1))
    crashed = store.take_turn(key)
    inbox.accept(message(key, 2))
    time.sleep(1.1)  # the worker died: nobody extends the lock
    resumed = store.take_turn(key)
    assert resumed.status == "taken" and resumed.turn_id != crashed.turn_id
    assert [m.text for m in store.turn_messages(key)] == ["m1", "m2"]
    assert not store.is_current(key, crashed.turn_id)


def test_delivery_markers_and_done_guard(client):
    store = ConversationStore(client, turn_ttl=30)
    assert store.sent_parts("t1") == set()
    store.mark_sent("t1", "0:0")
    store.mark_sent("t1", "0:1")
    assert store.sent_parts("t1") == {"0:0", "0:1"}
    assert store.mark_done_once("t1") is True
    assert store.mark_done_once("t1") is False


def test_history_trims_expires_and_clears(client):
    history = RedisHistory(client, ttl=120, max_turns=4)
    key = conversation()
    image = history.save_image(key, b"\xff\xd8jpeg")
    history.append(key, HistoryEntry(role="user", text="look", image_ids=(image,)))
    for i in range(5):
        history.append(key, HistoryEntry(role="assistant", text=f"a{i}"),
                       HistoryEntry(role="user", text=f"u{i}"))
    entries = history.load(key)
    assert len(entries) == 4 and entries[-1].text == "u4"
    assert 0 < client.ttl(f"sealion:conv:{key.as_path()}:history") <= 120
    assert history.image(key, image) == b"\xff\xd8jpeg"
    # the token budget keeps the newest turns and never starts on an answer
    budgeted = history.load(key, max_tokens=4)
    assert budgeted and budgeted[0].role == "user" and budgeted[-1].text == "u4"
    assert history.clear(key) == 3  # the history, the image and the conversation's image set
    assert history.load(key) == [] and history.image(key, image) is None


def test_worker_registry(client):
    registry = WorkerRegistry(client)
    registry.beat("w1")
    assert registry.alive() == ["w1"]
    registry.leave("w1")
    assert registry.alive() == []


def test_a_slow_step_takes_its_expired_lock_back_unless_another_turn_took_over(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, turn_ttl=1)
    key = conversation()
    inbox.accept(message(key, 1))
    slow = store.take_turn(key).turn_id
    time.sleep(1.1)  # generation outlived the lock; no other message came
    assert store.in_flight(key, slow) and not store.is_current(key, slow)
    assert store.claim(key, slow) is True and store.is_current(key, slow)
    assert store.finish_turn(key, slow) is True
    assert store.claim(key, slow) is False  # a finished turn stays finished

    inbox.accept(message(key, 2))
    stale = store.take_turn(key).turn_id
    time.sleep(1.1)
    inbox.accept(message(key, 3))
    resumed = store.take_turn(key)  # a new message resumed the messages under a new id
    assert resumed.status == "taken"
    assert store.claim(key, stale) is False and not store.in_flight(key, stale)
    assert [m.text for m in store.turn_messages(key)] == ["m2", "m3"]
