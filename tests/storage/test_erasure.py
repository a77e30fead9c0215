"""Erasing a person (storage/erasure.py, `Erasure.erase_person`) on the in-memory twin of Redis and a
real SQLite log: every key of their conversations goes, those the log knows and those only Redis
knows, nobody else's does, and a turn in flight cannot write them back. The SQL it runs is
tested on SQLite and PostgreSQL in tests/storage/log/test_erasure.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from bot.kernel.settings import Settings
from storage.conversations import ConversationStore
from storage.erasure import Erasure, erasure_hold_seconds
from storage.history import HistoryEntry, RedisHistory
from storage.inbox import Inbox
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from tests.helpers.conversation_log import count_messages, sqlite_log, turn

KEYS = KeyBuilder()


@pytest.fixture()
def conversation_log(tmp_path) -> Iterator[ConversationLog]:
    made = sqlite_log(tmp_path / "log.db")
    yield made
    made.close()


def erasure(client: redis.Redis, conversation_log: ConversationLog, *,
            hold_seconds: int = 60) -> Erasure:
    return Erasure(client, conversation_log, KEYS, hold_seconds=hold_seconds)


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


def test_every_key_of_the_persons_conversations_goes(client, conversation_log):
    budi, budi_other_bot, siti = private("2"), private("2", bot="999"), private("3")
    fill(client, budi, "turn-budi")
    fill(client, budi_other_bot, "turn-budi-2")  # only Redis knows this one
    fill(client, siti, "turn-siti")
    turn(conversation_log, budi, "my rendang secret", "noted", name="Budi")
    turn(conversation_log, siti, "my laksa secret", "noted")
    siti_keys = {k for k in client.keys() if b":3" in k or b"siti" in k}
    eraser = erasure(client, conversation_log)

    preview = eraser.preview(Platform.TELEGRAM, "2")
    assert [c.key for c in preview.conversations] == [budi]
    assert preview.redis_only == [budi_other_bot]
    assert (preview.group_messages, preview.name) == (0, "Budi")

    report = eraser.erase_person(Platform.TELEGRAM, "2")

    assert report.conversations == (budi, budi_other_bot)
    assert report.messages == 2  # his question and its answer
    assert conversation_log.person_conversations(Platform.TELEGRAM, "2") == []
    assert count_messages(conversation_log) == 2  # Siti's turn stays
    left = {k.decode() for k in client.keys()} - {KEYS.erased(Platform.TELEGRAM, "2")}
    assert not [k for k in left if "turn-budi" in k or ":2:" in k
                or k.endswith(":2") or k.endswith(":2:noticed")], left
    assert left - {k.decode() for k in siti_keys} == {"sealion:active"}
    assert client.zrange("sealion:active", 0, -1) == [siti.model_dump_json().encode()]
    assert report.redis_keys >= 2 * 19
    assert RedisHistory(client, ttl=3600, max_turns=20).load(siti)[0].text == "secret of 3"


def test_a_turn_in_flight_cannot_write_them_back(client, conversation_log):
    key = private("2")
    history = fill(client, key, "turn-1")
    eraser = erasure(client, conversation_log)
    assert not eraser.is_erased(Platform.TELEGRAM, "2")
    eraser.erase_person(Platform.TELEGRAM, "2")
    assert eraser.is_erased(Platform.TELEGRAM, "2")

    # The turn that was in flight now ends: its history, once-marker and photo are refused.
    entry = HistoryEntry(role="assistant", text="answer to a deleted person")
    assert history.append(key, entry, once="sealion:turn:turn-1:done") is False
    assert history.append(key, entry) is False
    image_id = history.save_image(key, b"\xff\xd8 another photo")
    assert history.image(key, image_id) is None
    # ... and so is the end of the turn itself (its owner and messages went with the deletion).
    finished = ConversationStore(client).finish_turn(
        key, "turn-1.0", history=(entry.model_dump_json(),), language="id", language_ttl=3600)
    assert not finished.released
    assert history.load(key) == [] and client.keys("sealion:conv:*") == []

    # Someone else, or a group (no person in its key), is not affected.
    group = ConversationKey(platform=Platform.TELEGRAM, bot_id="7000001", chat_id="-100")
    assert history.append(group, entry, once="sealion:turn:g:done") is True


def test_what_the_person_writes_after_the_deletion_is_kept(client, conversation_log):
    """The tombstone stops what arrived before the deletion, not a new conversation."""
    key = private("3")
    started = time.time()  # a turn in flight: its first message arrived before the deletion
    time.sleep(0.01)
    erasure(client, conversation_log).erase_person(Platform.TELEGRAM, "3")
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
    inbox = Inbox(client, dedupe_ttl=60, pending_ttl=60)
    for n, since, written in ((1, started, None), (2, again, "th")):
        inbox.accept(InboundMessage(key=key, event_id=f"e{n}", message_id=str(n), text="hi"))
        lease = store.start_turn(key).lease
        assert lease is not None
        assert store.finish_turn(key, lease, language="th", language_ttl=3600,
                                 since=since).released
        assert store.language(key) == written
    assert [e.text for e in history.load(key)] == ["after"]


def test_the_tombstone_ends(client, conversation_log):
    key = private("2")
    erasure(client, conversation_log, hold_seconds=1).erase_person(Platform.TELEGRAM, "2")
    history = RedisHistory(client, ttl=3600, max_turns=20)
    assert history.append(key, HistoryEntry(role="user", text="too soon")) is False
    time.sleep(1.2)
    assert history.append(key, HistoryEntry(role="user", text="welcome back")) is True
    assert [e.text for e in history.load(key)] == ["welcome back"]


def test_hold_outlives_any_turn_and_an_id_is_required(client, conversation_log):
    settings = Settings(_env_file=None)
    assert erasure_hold_seconds(settings) > settings.turn_timeout_seconds
    assert erasure_hold_seconds(settings) > settings.celery_visibility_timeout
    fill(client, private("2"), "turn-1")
    turn(conversation_log, private("2"), "question", "answer")
    before = set(client.keys())
    with pytest.raises(ValueError):
        erasure(client, conversation_log).erase_person(Platform.TELEGRAM, "")
    assert set(client.keys()) == before and count_messages(conversation_log) == 2


@pytest.mark.parametrize("by", ["6591234567", "SG.1502576394655843"])
def test_erasing_any_id_of_a_whatsapp_person_erases_all_of_them(client, conversation_log, by):
    """A person whose phone-keyed conversation is older than their BSUID, and a second,
    merged conversation keyed by the BSUID: erased by either id, both go, and the map too."""
    from storage.identities import IdentityMap

    phone, bsuid = "6591234567", "SG.1502576394655843"
    by_phone = ConversationKey(platform=Platform.WHATSAPP, bot_id="1", chat_id=phone,
                               user_id=phone)
    by_bsuid = by_phone.model_copy(update={"chat_id": bsuid, "user_id": bsuid})
    fill(client, by_phone, "turn-phone")
    fill(client, by_bsuid, "turn-bsuid")
    turn(conversation_log, by_phone, "my nasi lemak secret", "noted", name="Siti")
    turn(conversation_log, by_bsuid, "my chendol secret", "noted", name="Siti")
    client.set(KEYS.paused_note(Platform.WHATSAPP, "1", "2026-12", bsuid), "1")  # told once
    IdentityMap(client).resolve(InboundMessage(
        key=by_phone, event_id="e", message_id="m", sender_id=phone, identities=(bsuid, phone)))
    eraser = erasure(client, conversation_log)

    preview = eraser.preview(Platform.WHATSAPP, by)
    assert {c.key for c in preview.conversations} == {by_phone, by_bsuid}
    report = eraser.erase_person(Platform.WHATSAPP, by)
    assert set(report.conversations) == {by_phone, by_bsuid} and report.messages == 4
    assert sorted(client.keys()) == sorted(
        KEYS.erased(Platform.WHATSAPP, i).encode() for i in (phone, bsuid))
    assert eraser.is_erased(Platform.WHATSAPP, phone) and eraser.is_erased(Platform.WHATSAPP,
                                                                             bsuid)
