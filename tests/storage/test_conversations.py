"""The turn lifecycle on the in-memory twin of Redis: accept once, one turn at a time, resume after a crash;
what a turn reads when it starts and writes when it ends, each in one script."""

from __future__ import annotations

import time

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.conversations import ConversationStore, TurnStatus, WorkerRegistry
from storage.history import HistoryEntry, RedisHistory
from storage.inbox import Acceptance, Inbox
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
    assert first.status is TurnStatus.TAKEN and first.lease == f"{first.turn_id}.0"
    assert [m.text for m in first.messages] == ["m1", "m2"]
    assert [m.text for m in store.turn_messages(key)] == ["m1", "m2"]

    inbox.accept(message(key, 3))
    busy = store.take_turn(key)
    assert busy.status is TurnStatus.BUSY and busy.lease == first.lease and 0 < busy.wait <= 30

    assert store.finish_turn(key, "not-the-turn.0").released is False
    finished = store.finish_turn(key, first.lease)
    assert finished.released and finished.more  # m3 waits: the holder starts its turn
    assert store.has_work(key) and store.active_since(time.time() + 1) == [key]
    second = store.take_turn(key)
    assert second.status is TurnStatus.TAKEN and second.turn_id != first.turn_id
    assert [m.text for m in second.messages] == ["m3"]
    assert not store.finish_turn(key, second.lease).more
    assert store.take_turn(key).status is TurnStatus.IDLE
    assert store.active_since(time.time() + 1) == []


def test_a_turn_reads_what_planning_needs_when_it_starts(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30, max_history=3)
    key = conversation()
    inbox.accept(message(key, 1))
    started = store.start_turn(key, history=5)
    assert started.language is None and started.pin is None and started.history == ()
    entries = tuple(HistoryEntry(role=r, text=t).model_dump_json()
                    for r, t in (("user", "u1"), ("assistant", "a1")))
    store.finish_turn(key, started.lease, history=entries, language="th", language_ttl=60)
    store.pin_language(key, "ms", 60)
    inbox.accept(message(key, 2))
    again = store.start_turn(key, history=5)
    assert again.language == "th" and again.pin == "ms"
    assert [HistoryEntry.model_validate_json(e).text for e in again.history] == ["u1", "a1"]
    assert [m.text for m in again.messages] == ["m2"]


def test_an_album_still_arriving_makes_the_turn_wait(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    inbox.accept(message(key, 1, album_id="a1"))
    waiting = store.start_turn(key, album_window=30.0)
    assert waiting.status is TurnStatus.WAIT and 25 < waiting.wait <= 30
    assert store.current_lease(key) is None and [m.text for m in store.pending(key)] == ["m1"]
    # Once the window passed (here: no window), the album is one turn.
    inbox.accept(message(key, 2, album_id="a1"))
    taken = store.start_turn(key, album_window=0.0)
    assert taken.status is TurnStatus.TAKEN and [m.text for m in taken.messages] == ["m1", "m2"]


def test_finishing_writes_history_and_language_once_with_the_release(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30, max_history=3, history_ttl=120)
    history = RedisHistory(client, ttl=120, max_turns=3)
    key = conversation()
    for n in range(3):
        inbox.accept(message(key, n))
        lease = store.start_turn(key).lease
        assert lease is not None
        entry = HistoryEntry(role="user", text=f"u{n}").model_dump_json()
        assert store.finish_turn(key, lease, history=(entry, entry), language="vi",
                                 language_ttl=60).released
        # A retried finish of the same lease writes nothing more.
        assert not store.finish_turn(key, lease, history=(entry,), language="vi").released
    assert [e.text for e in history.load(key)] == ["u1", "u2", "u2"]  # trimmed to 3
    assert store.language(key) == "vi"
    assert 0 < client.ttl(f"sealion:conv:{key.as_path()}:history") <= 120


def test_nothing_of_an_erased_person_is_written_by_a_turn_that_began_before(client):
    from storage.keys import KeyBuilder

    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=30)
    key = conversation()
    inbox.accept(message(key, 1))
    began = time.time()
    lease = store.start_turn(key).lease
    assert lease is not None
    client.set(KeyBuilder().erased(key.platform, key.user_id), str(time.time()))
    entry = HistoryEntry(role="user", text="secret").model_dump_json()
    assert store.finish_turn(key, lease, history=(entry,), language="en", language_ttl=60,
                             since=began).released
    assert store.language(key) is None
    assert not client.exists(f"sealion:conv:{key.as_path()}:history")


def test_a_dead_workers_turn_is_resumed_under_its_next_epoch(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=1)
    key = conversation()
    inbox.accept(message(key, 1))
    crashed = store.take_turn(key)
    assert crashed.lease is not None and crashed.turn_id is not None
    store.keep_outcome(crashed.turn_id, "{}")
    inbox.accept(message(key, 2))
    assert store.reconcile_check(key) == "held"
    time.sleep(1.1)  # the worker died: nobody renews the lease
    assert store.reconcile_check(key) == "orphan"
    resumed = store.take_turn(key)
    # The same turn (its records are kept by turn id) with only its own messages; the late
    # message waits for the next turn.
    assert resumed.status is TurnStatus.RESUMED and resumed.lease == f"{crashed.turn_id}.1"
    assert resumed.turn_id is not None and store.outcome(resumed.turn_id) == "{}"
    assert [m.text for m in resumed.messages] == ["m1"]
    assert [m.text for m in store.pending(key)] == ["m2"]
    # The dead epoch can neither keep, take back nor finish the turn.
    assert store.claim(key, crashed.lease) is False
    assert store.finish_turn(key, crashed.lease).released is False
    assert not store.in_flight(key, crashed.lease) and store.in_flight(key, resumed.lease)


def test_an_owner_stops_vouching_for_a_turn_whose_generation_died(client):
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(client, lease_seconds=1)
    key = conversation()
    inbox.accept(message(key, 1))
    lease = store.take_turn(key).lease
    assert lease is not None
    assert store.renew(key, lease, watch_generation=True) == 1  # queued: still vouched for
    assert store.begin_generation(key, lease) == ("go", None)
    assert store.begin_generation(key, lease) == ("busy", None)  # a second job does not run
    assert store.begin_generation(key, "other.0") == ("stale", None)
    assert store.renew(key, lease, watch_generation=True) == 1  # generating
    time.sleep(1.1)  # the GPU worker died: its generation lease lapsed, no outcome
    assert store.renew(key, lease, watch_generation=True) == -1
    store.keep_outcome(lease.rsplit(".", 1)[0], '{"text": "hi"}')
    assert store.renew(key, lease, watch_generation=True) == 1  # it finished after all
    assert store.begin_generation(key, lease) == ("kept", '{"text": "hi"}')


def test_outcomes_keep_the_first_and_deliveries_are_exclusive(client):
    store = ConversationStore(client, lease_seconds=30)
    lock = store.lock_delivery("t1")
    assert lock is not None and store.lock_delivery("t1") is None
    assert 0 < store.delivery_lock_ttl("t1") <= 30
    store.unlock(lock)
    assert store.lock_delivery("t1") is not None
    assert store.keep_outcome("t1", "first") == "first"
    assert store.keep_outcome("t1", "second") == "first"
    assert store.outcome("t1") == "first"


def test_delivery_markers(client):
    store = ConversationStore(client, lease_seconds=30)
    assert store.sent_parts("t1", 4) == set()
    store.mark_sent("t1", 0)
    store.mark_sent("t1", 2)
    assert store.sent_parts("t1", 4) == {0, 2}
    assert store.sent_parts("t1", 1) == {0}
    assert 0 < client.ttl("sealion:turn:t1:sent:2") <= 24 * 3600


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
    assert store.finish_turn(key, slow).released is True
    assert store.claim(key, slow) is False  # a finished turn stays finished
