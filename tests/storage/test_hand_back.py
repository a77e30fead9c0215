"""`ConversationStore.hand_back`: a stopping worker lets a turn's lease go at once, only its own,
and never from under a step another worker runs on it (on the in-memory twin of Redis)."""

from __future__ import annotations

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.conversations import ConversationStore, turn_id_of
from storage.inbox import Inbox
from tests.conftest import new_chat_id


def _turn(client) -> tuple[ConversationStore, ConversationKey, str]:
    """A conversation with one message, its turn taken: (store, key, lease)."""
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    Inbox(client, dedupe_ttl=60, pending_ttl=60).accept(
        InboundMessage(key=key, event_id=f"e{chat}", message_id="1", text="halo"))
    store = ConversationStore(client, lease_seconds=600)
    state = store.take_turn(key)
    assert state.status == "taken" and state.lease is not None
    return store, key, state.lease


def test_the_holder_lets_go_and_the_turn_is_resumed_at_once(client):
    store, key, lease = _turn(client)
    assert store.take_turn(key).status == "busy"  # the lease has ten minutes to run
    assert store.hand_back(key, lease) is True
    assert store.current_lease(key) is None
    resumed = store.take_turn(key)
    assert resumed.status == "resumed" and resumed.lease == f"{turn_id_of(lease)}.1"
    assert [m.text for m in store.turn_messages(key)] == ["halo"]  # nothing lost
    # The old epoch's hand-back (a late one) does not touch the new lease.
    assert store.hand_back(key, lease) is False
    assert store.current_lease(key) == resumed.lease


def test_another_token_lets_nothing_go(client):
    store, key, lease = _turn(client)
    assert store.hand_back(key, f"{turn_id_of(lease)}.7") is False
    assert store.hand_back(key, "someone-else.0") is False
    assert store.current_lease(key) == lease


def test_a_step_lock_keeps_the_lease_with_the_worker_running_the_step(client):
    store, key, lease = _turn(client)
    assert store.begin_generation(key, lease) == ("go", None)  # another worker generates it
    assert store.hand_back(key, lease) is False
    assert store.current_lease(key) == lease
    store.unlock(store.generation_key(lease))
    sending = store.lock_delivery(turn_id_of(lease))  # ... or delivers it
    assert sending is not None
    assert store.hand_back(key, lease) is False
    store.unlock(sending)
    assert store.hand_back(key, lease) is True
