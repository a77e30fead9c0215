"""The history's images (on the in-memory twin of Redis; on the real one where commands are
counted): named in a per-conversation set, so that refreshing their expiry reads no history and
forgetting a conversation scans no keyspace."""

from __future__ import annotations

import redis

from bot.kernel.messages import ConversationKey, Platform
from storage.history import HistoryEntry, RedisHistory
from storage.keys import KeyBuilder
from tests.conftest import new_chat_id

KEYS = KeyBuilder()


def conversation() -> ConversationKey:
    chat = str(new_chat_id())
    return ConversationKey(platform=Platform.LINE, bot_id="1", chat_id=chat, user_id=chat)


def calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_touch_refreshes_every_image_without_reading_the_history(own_client):
    client = own_client  # counted by INFO commandstats
    history = RedisHistory(client, ttl=600, max_turns=10)
    key = conversation()
    images = [history.save_image(key, b"jpeg%d" % n) for n in range(3)]
    history.append(key, HistoryEntry(role="user", text="three photos", image_ids=tuple(images)))
    for name in [KEYS.history(key), KEYS.images(key), *(KEYS.image(key, i) for i in images)]:
        client.expire(name, 5)

    reads = calls(client, "lrange")
    history.touch(key)
    assert calls(client, "lrange") == reads
    for name in [KEYS.history(key), KEYS.images(key), *(KEYS.image(key, i) for i in images)]:
        assert 590 < client.ttl(name) <= 600, name


def test_clear_forgets_only_this_conversation_without_a_scan(own_client):
    client = own_client  # counted by INFO commandstats
    history = RedisHistory(client, ttl=600, max_turns=10)
    key, other = conversation(), conversation()
    mine = [history.save_image(key, b"a"), history.save_image(key, b"b")]
    theirs = history.save_image(other, b"c")
    history.append(key, HistoryEntry(role="user", text="hi", image_ids=tuple(mine)))
    history.append(other, HistoryEntry(role="user", text="hello", image_ids=(theirs,)))

    scans = calls(client, "scan")
    assert history.clear(key) == 4  # the history, two images, the image set
    assert calls(client, "scan") == scans
    assert client.keys(KEYS.conversation(key, "*")) == []
    assert history.image(other, theirs) == b"c"
    assert [e.text for e in history.load(other)] == ["hello"]
    assert history.clear(key) == 0


def test_the_image_set_keeps_the_newest(client):
    history = RedisHistory(client, ttl=600, max_turns=10, max_images=2)
    key = conversation()
    first, second, third = (history.save_image(key, b"%d" % n) for n in range(3))
    assert history.image(key, first) is None
    assert history.image(key, second) == b"1" and history.image(key, third) == b"2"
    assert client.zcard(KEYS.images(key)) == 2
