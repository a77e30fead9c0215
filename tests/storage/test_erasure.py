"""Forgetting a person in Redis (storage/erasure.py) on the suite's real Redis: every key of
their conversations goes, nobody else's does, and a turn in flight cannot write them back."""

from __future__ import annotations

import time

import pytest
import redis

from bot.messages import ConversationKey, InboundMessage, Platform
from bot.settings import Settings
from storage.conversations import ConversationStore
from storage.erasure import (
    erasure_hold_seconds,
    forget_conversations,
    is_erased,
    mark_erased,
)
from storage.history import HistoryEntry, RedisHistory
from storage.keys import KeyBuilder

KEYS = KeyBuilder()


def private(user: str, bot: str = "7000001") -> ConversationKey:
    return ConversationKey(platform=Platform.TELEGRAM, bot_id=bot, chat_id=user, user_id=user)


def fill(client: redis.Redis, key: ConversationKey, turn_id: str) -> RedisHistory:
    """Every kind of key a conversation has while a turn is in flight."""
    history = RedisHistory(client, ttl=3600, max_turns=20)
    history.append(key, HistoryEntry(role="user", text=f"secret of {key.user_id}"))
    history.save_image(key, b"\xff\xd8 a photo")
    message = InboundMessage(key=key, event_id="e1", message_id="m1", text="queued",
                             sender_id=key.user_id)
    lease = f"{turn_id}.3"
    client.rpush(KEYS.pending(key), message.model_dump_json())
    client.rpush(KEYS.inflight(key), message.model_dump_json())
    client.set(KEYS.turn(key), turn_id)
    client.set(KEYS.turn_owner(key), lease)
    client.set(KEYS.language(key), "id")
    client.set(KEYS.language_pin(key), "id")
    client.set(KEYS.conversation(key, "busy"), "1")
    for part in ("sent", "done", "partial", "plan", "outcome"):
        client.set(f"sealion:turn:{turn_id}:{part}", f"{part} of {key.user_id}")
    client.set(f"sealion:lease:{lease}:started", "1")
    client.set(f"sealion:lease:{lease}:generating", "1")
    client.zadd("sealion:active", {key.model_dump_json(): time.time()})
    client.hset(KEYS.rate_bucket(key.platform, key.bot_id, key.user_id), "tokens", "3")
    client.set(f"{KEYS.rate_bucket(key.platform, key.bot_id, key.user_id)}:noticed", "1")
    return history


def test_every_key_of_the_persons_conversations_goes(client):
    budi, budi_other_bot, siti = private("2"), private("2", bot="999"), private("3")
    fill(client, budi, "turn-budi")
    fill(client, budi_other_bot, "turn-budi-2")
    fill(client, siti, "turn-siti")
    siti_keys = {k for k in client.keys() if b":3" in k or b"siti" in k}

    mark_erased(client, KEYS, Platform.TELEGRAM, "2", hold_seconds=60)
    removed = forget_conversations(client, KEYS, Platform.TELEGRAM, "2",
                                   [budi, budi_other_bot])

    left = {k.decode() for k in client.keys()} - {KEYS.erased(Platform.TELEGRAM, "2")}
    assert not [k for k in left if "turn-budi" in k or ":2:" in k
                or k.endswith(":2") or k.endswith(":2:noticed")], left
    assert left - {k.decode() for k in siti_keys} == {"sealion:active"}
    assert client.zrange("sealion:active", 0, -1) == [siti.model_dump_json().encode()]
    assert removed >= 2 * 19
    assert RedisHistory(client, ttl=3600, max_turns=20).load(siti)[0].text == "secret of 3"


def test_a_turn_in_flight_cannot_write_them_back(client):
    key = private("2")
    history = fill(client, key, "turn-1")
    mark_erased(client, KEYS, Platform.TELEGRAM, "2", hold_seconds=60)
    forget_conversations(client, KEYS, Platform.TELEGRAM, "2", [key])
    assert is_erased(client, KEYS, Platform.TELEGRAM, "2")

    # The turn that was in flight now ends: its history, once-marker and photo are refused.
    entry = HistoryEntry(role="assistant", text="answer to a deleted person")
    assert history.append(key, entry, once="sealion:turn:turn-1:done") is False
    assert history.append(key, entry) is False
    image_id = history.save_image(key, b"\xff\xd8 another photo")
    assert history.image(key, image_id) is None
    ConversationStore(client).set_language(key, "id", 3600)
    assert history.load(key) == [] and client.keys("sealion:conv:*") == []

    # Someone else, or a group (no person in its key), is not affected.
    group = ConversationKey(platform=Platform.TELEGRAM, bot_id="7000001", chat_id="-100")
    assert history.append(group, entry, once="sealion:turn:g:done") is True


def test_what_the_person_writes_after_the_deletion_is_kept(client):
    """The tombstone stops what arrived before the deletion, not a new conversation."""
    key = private("3")
    started = time.time()  # a turn in flight: its first message arrived before the deletion
    time.sleep(0.01)
    mark_erased(client, KEYS, Platform.TELEGRAM, "3", hold_seconds=60)
    history = RedisHistory(client, ttl=3600, max_turns=20)
    old = HistoryEntry(role="user", text="before")
    assert history.append(key, old, once="sealion:turn:t-old:done", since=started) is False
    assert history.image(key, history.save_image(key, b"old", since=started)) is None

    time.sleep(0.01)
    again = time.time()  # the person writes again after the deletion
    new = HistoryEntry(role="user", text="after")
    assert history.append(key, new, once="sealion:turn:t-new:done", since=again) is True
    assert history.image(key, history.save_image(key, b"new", since=again)) == b"new"
    store = ConversationStore(client)
    store.set_language(key, "th", 3600, since=started)
    assert store.language(key) is None
    store.set_language(key, "th", 3600, since=again)
    assert store.language(key) == "th"
    assert [e.text for e in history.load(key)] == ["after"]


def test_the_tombstone_ends(client):
    key = private("2")
    mark_erased(client, KEYS, Platform.TELEGRAM, "2", hold_seconds=1)
    history = RedisHistory(client, ttl=3600, max_turns=20)
    assert history.append(key, HistoryEntry(role="user", text="too soon")) is False
    time.sleep(1.2)
    assert history.append(key, HistoryEntry(role="user", text="welcome back")) is True
    assert [e.text for e in history.load(key)] == ["welcome back"]


def test_hold_outlives_any_turn_and_an_id_is_required(client):
    settings = Settings(_env_file=None)
    assert erasure_hold_seconds(settings) > settings.turn_timeout_seconds
    assert erasure_hold_seconds(settings) > settings.celery_visibility_timeout
    with pytest.raises(ValueError):
        mark_erased(client, KEYS, Platform.TELEGRAM, "", hold_seconds=60)
