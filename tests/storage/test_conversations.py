"""The turn lifecycle on a real Redis: accept once, one turn at a time, resume after a crash."""

from __future__ import annotations

import time

from bot.messages import ConversationKey, InboundMessage, Platform
from storage.conversations import Acceptance, ConversationStore, Inbox, WorkerRegistry
from storage.history import HistoryEntry, RedisHistory
from tests.conftest import new_chat_id


def message(key: ConversationKey, n: int, **kw) -> InboundMessage:
    return InboundMessage(key=key, event_id=f"ev{n}", message_id=str(n), text=f"m{n}", **kw)


def conversation() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)


def test_inbox_accepts_each_event_once(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    assert inbox.accept(message(key, 1)) == Acceptance.ACCEPTED
    assert not inbox.accept(message(key, 1))
    assert [m.text for m in store.pending(key)] == ["m1"]
    assert store.active_since(time.time() + 1) == [key]


def test_the_backlog_is_capped_by_dropping_the_oldest(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60, max_pending=3)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    results = [inbox.accept(message(key, n)) for n in range(5)]
    assert results == [Acceptance.ACCEPTED] * 3 + [Acceptance.ACCEPTED_DROPPED_OLDEST] * 2
    assert [m.text for m in store.pending(key)] == ["m2", "m3", "m4"]


def test_one_turn_at_a_time_and_late_messages_wait(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    inbox.accept(message(key, 1))
    inbox.accept(message(key, 2))
    first = store.take_turn(key)
    assert first.status == "taken" and first.lease == f"{first.turn_id}.0"
    assert [m.text for m in store.turn_messages(key)] == ["m1", "m2"]

    inbox.accept(message(key, 3))
    busy = store.take_turn(key)
    assert busy.status == "busy" and busy.lease == first.lease and 0 < busy.retry_after <= 30

    assert store.finish_turn(key, "not-the-turn.0") is False
    assert store.finish_turn(key, first.lease) is True
    assert store.has_work(key) and store.active_since(time.time() + 1) == [key]
    second = store.take_turn(key)
    assert second.status == "taken" and second.turn_id != first.turn_id
    assert [m.text for m in store.turn_messages(key)] == ["m3"]
    store.finish_turn(key, second.lease)
    assert store.take_turn(key).status == "idle"
    assert store.active_since(time.time() + 1) == []


def test_a_dead_workers_turn_is_resumed_under_its_next_epoch(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=1)
    key = conversation()
    inbox.accept(message(key, 1))
    crashed = store.take_turn(key)
    assert crashed.lease is not None
    store.save_plan(crashed.turn_id, "{}")
    inbox.accept(message(key, 2))
    assert store.reconcile_check(key) == "held"
    time.sleep(1.1)  # the worker died: nobody renews the lease
    assert store.reconcile_check(key) == "orphan"
    resumed = store.take_turn(key)
    # The same turn (its records are kept by turn id) with only its own messages; the late
    # message waits for the next turn.
    assert resumed.status == "resumed" and resumed.lease == f"{crashed.turn_id}.1"
    assert store.plan(resumed.turn_id) == "{}"
    assert [m.text for m in store.turn_messages(key)] == ["m1"]
    assert [m.text for m in store.pending(key)] == ["m2"]
    # The dead epoch can neither keep, take back nor finish the turn.
    assert store.claim(key, crashed.lease) is False
    assert store.finish_turn(key, crashed.lease) is False
    assert not store.in_flight(key, crashed.lease) and store.in_flight(key, resumed.lease)


def test_an_owner_stops_vouching_for_a_turn_whose_generation_died(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=1)
    key = conversation()
    inbox.accept(message(key, 1))
    lease = store.take_turn(key).lease
    assert lease is not None
    assert store.renew(key, lease, watch_generation=True) == 1  # queued: still vouched for
    assert store.begin_generation(lease) is True
    assert store.begin_generation(lease) is False  # a redelivered job does not run twice
    assert store.renew(key, lease, watch_generation=True) == 1  # generating
    time.sleep(1.1)  # the GPU worker died: its generation lease lapsed, no outcome
    assert store.renew(key, lease, watch_generation=True) == -1
    store.save_outcome(lease.rsplit(".", 1)[0], '{"text": "hi"}')
    assert store.renew(key, lease, watch_generation=True) == 1  # it finished after all


def test_outcomes_keep_the_first_and_deliveries_are_exclusive(client):
    store = ConversationStore(client, lease_seconds=30)
    lock = store.lock_delivery("t1")
    assert lock is not None and store.lock_delivery("t1") is None
    assert 0 < store.delivery_lock_ttl("t1") <= 30
    store.unlock(lock)
    assert store.lock_delivery("t1") is not None
    assert store.save_outcome("t1", "first") == "first"
    assert store.save_outcome("t1", "second") == "first"
    assert store.outcome("t1") == "first"


def test_delivery_markers_and_history_written_once(client):
    store = ConversationStore(client, lease_seconds=30)
    history = RedisHistory(client, ttl=120, max_turns=10)
    key = conversation()
    assert store.sent_parts("t1") == set()
    store.mark_sent("t1", "0")
    store.mark_sent("t1", "1")
    assert store.sent_parts("t1") == {"0", "1"}
    entry = HistoryEntry(role="user", text="hello")
    assert history.append(key, entry, once=store.done_marker("t1")) is True
    assert history.append(key, entry, once=store.done_marker("t1")) is False
    assert store.is_done("t1") and [e.text for e in history.load(key)] == ["hello"]


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


def test_a_lapsed_lease_is_taken_back_unless_the_turn_was_resumed(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=1)
    key = conversation()
    inbox.accept(message(key, 1))
    slow = store.take_turn(key).lease
    assert slow is not None
    time.sleep(1.1)  # a Redis outage or a slow beat; nobody resumed the turn meanwhile
    assert store.in_flight(key, slow) and store.current_lease(key) is None
    assert store.claim(key, slow) is True and store.current_lease(key) == slow
    assert store.finish_turn(key, slow) is True
    assert store.claim(key, slow) is False  # a finished turn stays finished
