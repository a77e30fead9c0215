"""The contract of the Redis stores, run against the suite's real redis-server and against the
in-memory twin of the unit tier (`tests/helpers/twins.py`), so the two cannot drift.

Each scenario drives one store's public behaviour (the conversation store's turns, leases,
generation and delivery records, hand-back and reconciler; the inbox's accept with dedupe, cap
and wake-up; the history and its photos; the abuse screen, rate limiter, block list and
backlog; metrics; the local mailbox; polling offsets; voice notes; the model status board; the
erasure's Redis side), asserts what it must do, and records what it saw: results, values read
back, and the keyspace left behind (every key's type and TTL, ids masked).

- `test_the_store_keeps_its_contract` runs each scenario on each backend (the twin's cases are
  unit tests; Redis's are integration tests).
- `test_the_twin_answers_as_redis_does` runs each on both and compares the records whole: a
  twin that answered anything differently from Redis, or left a key or a TTL Redis does not,
  fails here, even where no scenario asserts it.
- `test_a_drifted_twin_is_caught` shows that comparison failing on a twin made to drift.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from storage.abuse import AbuseScreen, Backlog, BlockList, RateDecision, RateLimiter, Verdict
from storage.conversations import ConversationStore, TurnStatus, WorkerRegistry, turn_id_of
from storage.erasure import Erasure
from storage.history import HistoryEntry, RedisHistory
from storage.inbox import Acceptance, AsyncInbox, Inbox, WakeUp
from storage.keys import KeyBuilder
from storage.mailbox import LocalMailbox
from storage.metrics import RedisCollector, RedisMetrics
from storage.model_status import ModelStatusBoard
from storage.poll_offsets import OFFSET_TTL_SECONDS, PollOffsets
from storage.voice import VoiceNotes
from tests.helpers.twins import TwinServer

KEYS = KeyBuilder()
ALICE = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="501", user_id="501")
BOB = ConversationKey(platform=Platform.WHATSAPP, bot_id="9", chat_id="602", user_id="602")
GROUP = ConversationKey(platform=Platform.LINE, bot_id="3", chat_id="g7", user_id="")


class Backend:
    """One Redis to run a scenario on: its blocking client, and asyncio clients of the same
    data."""

    def __init__(self, name: str, client: redis.Redis,
                 async_client: Callable[[], redis.asyncio.Redis], folder: Path) -> None:
        self.name = name
        self.client = client
        self.async_client = async_client
        self.folder = folder


class Seen:
    """What a scenario saw, in order: compared whole between Redis and the twin."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def __call__(self, label: str, value: Any) -> Any:
        self.items.append((label, _plain(value)))
        return value


def _plain(value: Any) -> Any:
    """Bytes as text, containers as lists, random ids masked: comparable across backends."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        return re.sub(r"[0-9a-f]{32}", "<id>", value)
    if isinstance(value, dict):
        return sorted((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


def ttl_of(client: redis.Redis, name: str) -> int:
    """-2 (no key), -1 (no expiry), else the TTL rounded up to 5 s (a scenario takes less)."""
    ms = int(client.pttl(name))
    return ms if ms < 0 else 5 * math.ceil(ms / 5000)


def keyspace(client: redis.Redis) -> list[tuple[str, str, int]]:
    """Every key left: (name with ids masked, type, TTL as `ttl_of`)."""
    return sorted((_plain(name), _plain(client.type(name)), ttl_of(client, name))
                  for name in client.keys("*"))


def message(key: ConversationKey, n: int, **kw: Any) -> InboundMessage:
    return InboundMessage(key=key, event_id=f"{key.chat_id}-{n}", message_id=str(n),
                          text=f"m{n}", **kw)


def texts(messages: Any) -> list[str]:
    return [m.text for m in messages]


# --- scenarios ---------------------------------------------------------------------------------

def inbox_accept(b: Backend, seen: Seen) -> None:
    inbox = Inbox(b.client, dedupe_ttl=60, pending_ttl=120, max_pending=3)
    store = ConversationStore(b.client, lease_seconds=30)
    wake = WakeUp(queue="wake-ups", payload="wake")
    assert seen("first", inbox.accept(message(ALICE, 1), wake)) is Acceptance.ACCEPTED
    assert seen("redelivered", inbox.accept(message(ALICE, 1), wake)) is Acceptance.DUPLICATE
    assert seen("second", inbox.accept(message(ALICE, 2), wake)) is Acceptance.ACCEPTED
    # One wake-up: the conversation was idle only for the first message.
    assert seen("queue", b.client.lrange("wake-ups", 0, -1)) == [b"wake"]
    results = [inbox.accept(message(ALICE, n)) for n in (3, 4, 5)]
    assert seen("over the cap", results) == [Acceptance.ACCEPTED,
                                             Acceptance.ACCEPTED_DROPPED_OLDEST,
                                             Acceptance.ACCEPTED_DROPPED_OLDEST]
    assert seen("pending", texts(store.pending(ALICE))) == ["m3", "m4", "m5"]
    assert seen("active", store.active_since(time.time() + 1)) == [ALICE]
    seen("dedupe ttl", ttl_of(b.client, KEYS.dedupe(Platform.TELEGRAM, "1", "501-1")))
    assert seen("pending ttl", ttl_of(b.client, KEYS.pending(ALICE))) == 120

    async def accept_async() -> list[Acceptance]:
        client = b.async_client()
        try:
            inbox = AsyncInbox(client, dedupe_ttl=60, pending_ttl=60)
            return [await inbox.accept(message(BOB, 1), wake),
                    await inbox.accept(message(BOB, 1), wake)]
        finally:
            await client.aclose()

    assert seen("async", asyncio.run(accept_async())) == [Acceptance.ACCEPTED,
                                                          Acceptance.DUPLICATE]
    assert seen("queue after", b.client.llen("wake-ups")) == 2


def turns(b: Backend, seen: Seen) -> None:
    inbox = Inbox(b.client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(b.client, lease_seconds=30, history_ttl=600, max_history=3)
    assert seen("idle", store.start_turn(ALICE).status) is TurnStatus.IDLE
    inbox.accept(message(ALICE, 1))
    inbox.accept(message(ALICE, 2))
    first = store.start_turn(ALICE, history=5)
    assert seen("taken", first.status) is TurnStatus.TAKEN
    assert first.lease == f"{first.turn_id}.0" and first.epoch == 0
    assert seen("messages", texts(first.messages)) == ["m1", "m2"]
    assert seen("read", (first.language, first.pin, first.history)) == (None, None, ())
    assert seen("in flight", texts(store.turn_messages(ALICE))) == ["m1", "m2"]
    seen("lease ttl", ttl_of(b.client, KEYS.turn(ALICE)))
    seen("owner ttl", ttl_of(b.client, KEYS.turn_owner(ALICE)))
    inbox.accept(message(ALICE, 3))
    busy = store.start_turn(ALICE)
    assert seen("busy", busy.status) is TurnStatus.BUSY and busy.lease == first.lease
    assert 25 < busy.wait <= 30
    assert store.current_lease(ALICE) == first.lease and store.in_flight(ALICE, first.lease)
    assert seen("a stranger finishes", store.finish_turn(ALICE, "stranger.0").released) is False
    entries = tuple(HistoryEntry(role=r, text=t, at=1.0).model_dump_json()
                    for r, t in (("user", "u1"), ("assistant", "a1"), ("user", "u2"),
                                 ("assistant", "a2")))
    done = store.finish_turn(ALICE, first.lease, history=entries, language="th",
                             language_ttl=90)
    assert seen("finished", (done.released, done.more)) == (True, True)
    assert seen("history kept", len(b.client.lrange(KEYS.history(ALICE), 0, -1))) == 3
    seen("history ttl", ttl_of(b.client, KEYS.history(ALICE)))
    seen("language ttl", ttl_of(b.client, KEYS.language(ALICE)))
    store.pin_language(ALICE, "ms", 60)
    second = store.start_turn(ALICE, history=2)
    assert seen("second", (second.status, texts(second.messages))) == (TurnStatus.TAKEN, ["m3"])
    assert seen("second read", (second.language, second.pin)) == ("th", "ms")
    assert seen("history read", [json.loads(h)["text"] for h in second.history]) == ["u2", "a2"]
    assert seen("known", store.known(ALICE, history=1)[:2]) == ("th", "ms")
    store.pin_language(ALICE, None, 60)
    assert seen("unpinned", store.pinned_language(ALICE)) is None
    # The person's data deleted after the turn began: no history, no language written.
    b.client.set(KEYS.erased(ALICE.platform, ALICE.user_id), str(time.time() + 5))
    gone = store.finish_turn(ALICE, second.lease, history=entries[:2], language="en",
                             language_ttl=60, since=time.time())
    assert seen("erased finish", (gone.released, gone.more)) == (True, False)
    assert seen("language after erasure", store.language(ALICE)) == "th"
    assert seen("history after erasure", len(b.client.lrange(KEYS.history(ALICE), 0, -1))) == 3
    assert seen("idle again", store.start_turn(ALICE).status) is TurnStatus.IDLE
    assert seen("active after", store.active_since(time.time() + 1)) == []


def resume_and_album(b: Backend, seen: Seen) -> None:
    inbox = Inbox(b.client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(b.client, lease_seconds=30)
    inbox.accept(message(ALICE, 1))
    first = store.take_turn(ALICE)
    b.client.delete(KEYS.turn(ALICE))  # the worker died: its lease lapsed
    inbox.accept(message(ALICE, 2))
    resumed = store.take_turn(ALICE)
    assert seen("resumed", resumed.status) is TurnStatus.RESUMED
    assert resumed.lease == f"{first.turn_id}.1" and resumed.epoch == 1
    assert seen("resumed messages", texts(resumed.messages)) == ["m1"]
    assert seen("dead epoch", store.in_flight(ALICE, first.lease)) is False
    assert store.finish_turn(ALICE, resumed.lease).more
    # An album still arriving makes the turn wait; once its window passed it is one turn.
    now = time.time()
    inbox.accept(message(BOB, 1, album_id="a1", received_at=now))
    waiting = store.start_turn(BOB, album_window=30.0)
    assert seen("album", waiting.status) is TurnStatus.WAIT and 25 < waiting.wait <= 30
    inbox.accept(message(BOB, 2, album_id="a1", received_at=now))
    album = store.start_turn(BOB, album_window=0.0)
    assert seen("album taken", texts(album.messages)) == ["m1", "m2"]
    # Messages left in flight with no owner join the next turn.
    b.client.delete(KEYS.turn(BOB), KEYS.turn_owner(BOB))
    inbox.accept(message(BOB, 3))
    joined = store.start_turn(BOB)
    assert seen("joined", (joined.status, texts(joined.messages))) == (TurnStatus.TAKEN,
                                                                      ["m1", "m2", "m3"])
    seen("inflight ttl", ttl_of(b.client, KEYS.inflight(BOB)))


def leases_and_records(b: Backend, seen: Seen) -> None:
    inbox = Inbox(b.client, dedupe_ttl=60, pending_ttl=60)
    store = ConversationStore(b.client, lease_seconds=20, list_ttl=300, marker_ttl=900)
    inbox.accept(message(ALICE, 1))
    turn = store.take_turn(ALICE)
    lease, turn_id = turn.lease, turn.turn_id
    assert lease is not None and turn_id is not None and turn_id_of(lease) == turn_id
    assert seen("renew", store.renew(ALICE, lease)) == 1
    assert seen("renew a stranger", store.renew(ALICE, "x.0")) == 0
    b.client.delete(KEYS.turn(ALICE))
    assert seen("claim back", store.claim(ALICE, lease)) is True  # lapsed, nobody took it
    assert seen("begin", store.begin_generation(ALICE, lease)) == ("go", None)
    assert seen("begin again", store.begin_generation(ALICE, lease)) == ("busy", None)
    seen("generating ttl", ttl_of(b.client, store.generation_key(lease)))
    seen("started ttl", ttl_of(b.client, KEYS.lease_started(lease)))
    assert seen("begin stale", store.begin_generation(ALICE, "x.0")) == ("stale", None)
    # The generation's worker stopped beating without an outcome: the owner stops vouching.
    b.client.delete(store.generation_key(lease))
    assert seen("watch", store.renew(ALICE, lease, watch_generation=True)) == -1
    assert seen("keep", store.keep_outcome(turn_id, '{"text": "one"}')) == '{"text": "one"}'
    assert seen("keep again", store.keep_outcome(turn_id, '{"text": "two"}')) == '{"text": "one"}'
    assert seen("kept", store.begin_generation(ALICE, lease)) == ("kept", '{"text": "one"}')
    assert seen("watch with outcome", store.renew(ALICE, lease, watch_generation=True)) == 1
    seen("outcome ttl", ttl_of(b.client, KEYS.turn_outcome(turn_id)))
    assert seen("outcome", store.outcome(turn_id)) == '{"text": "one"}'
    lock = store.lock_delivery(turn_id)
    assert seen("locked", lock is not None) and store.lock_delivery(turn_id) is None
    assert lock is not None and 15 < store.delivery_lock_ttl(turn_id) <= 20
    store.keep_alive(lock)
    # A step lock taken: the lease is not handed back.
    assert seen("hand back while delivering", store.hand_back(ALICE, lease)) is False
    store.unlock(lock)
    assert seen("unlocked ttl", store.delivery_lock_ttl(turn_id)) == 0
    assert seen("sent none", store.sent_parts(turn_id, 3)) == set()
    store.mark_sent(turn_id, 0)
    store.mark_sent(turn_id, 2)
    assert seen("sent", store.sent_parts(turn_id, 3)) == {0, 2}
    assert seen("sent of none", store.sent_parts(turn_id, 0)) == set()
    seen("sent ttl", ttl_of(b.client, KEYS.turn_sent(turn_id, 0)))
    store.set_partial(turn_id, "so far")
    assert seen("partial", store.partial(turn_id)) == "so far"
    assert seen("reconcile held", store.reconcile_check(ALICE)) == "held"
    assert seen("hand back a stranger", store.hand_back(ALICE, "x.0")) is False
    assert seen("hand back", store.hand_back(ALICE, lease)) is True
    assert seen("after hand back", store.current_lease(ALICE)) is None
    assert seen("reconcile orphan", store.reconcile_check(ALICE)) == "orphan"
    assert seen("resumed at once", store.take_turn(ALICE).lease) == f"{turn_id}.1"
    store.finish_turn(ALICE, f"{turn_id}.1")
    assert seen("reconcile gone", store.reconcile_check(ALICE)) == "gone"
    assert seen("has work", store.has_work(ALICE)) is False
    workers = WorkerRegistry(b.client)
    workers.beat("host-a:1")
    workers.beat("host-b:2")
    assert seen("alive", sorted(workers.alive())) == ["host-a:1", "host-b:2"]
    assert seen("alive on", workers.alive_on("host-a")) is True
    workers.leave("host-a:1")
    assert seen("left", workers.alive_on("host-a")) is False


def history(b: Backend, seen: Seen) -> None:
    store = RedisHistory(b.client, ttl=300, max_turns=4, max_images=2)
    first = [HistoryEntry(role="user", text="q" * 40, at=1.0),
             HistoryEntry(role="assistant", text="a" * 40, at=2.0)]
    assert seen("append", store.append(ALICE, *first)) is True
    assert seen("once", store.append(ALICE, *first, once="marker:1")) is True
    assert seen("once again", store.append(ALICE, *first, once="marker:1")) is False
    store.append(ALICE, HistoryEntry(role="user", text="last", at=3.0))
    assert seen("trimmed", [e.text[:1] for e in store.load(ALICE)]) == ["a", "q", "a", "l"]
    assert seen("budget", [e.text for e in store.load(ALICE, max_tokens=12)]) == ["last"]
    ids = [store.save_image(ALICE, bytes([n]) * 10) for n in range(3)]
    assert seen("oldest photo dropped", store.image(ALICE, ids[0])) is None
    assert seen("photo", store.image(ALICE, ids[2])) == bytes([2]) * 10
    b.client.expire(KEYS.history(ALICE), 10)
    b.client.expire(KEYS.image(ALICE, ids[1]), 10)
    store.touch(ALICE)
    seen("touched history ttl", ttl_of(b.client, KEYS.history(ALICE)))
    seen("touched photo ttl", ttl_of(b.client, KEYS.image(ALICE, ids[1])))
    seen("images ttl", ttl_of(b.client, KEYS.images(ALICE)))
    # Deleted after `since`: neither history nor photos are written.
    b.client.set(KEYS.erased(BOB.platform, BOB.user_id), str(time.time() + 5))
    assert seen("erased append", store.append(BOB, *first, since=time.time())) is False
    assert seen("erased once", store.append(BOB, *first, once="marker:2",
                                            since=time.time())) is False
    store.save_image(BOB, b"x", since=time.time())
    assert seen("erased photos", b.client.exists(KEYS.images(BOB))) == 0
    assert seen("clear", store.clear(ALICE)) == 4  # two photos, the history, the image set
    assert seen("cleared", store.load(ALICE)) == []


def abuse(b: Backend, seen: Seen) -> None:
    screen = AbuseScreen(b.client, messages=2, window_seconds=60)
    blocks = BlockList(b.client)
    batch = [message(ALICE, n) for n in range(4)]
    first = screen.screen(batch)
    assert seen("screen", first.verdicts) == (Verdict.OK, Verdict.OK, Verdict.LIMITED,
                                              Verdict.LIMITED)
    assert seen("notice", first.notify_limited) is True
    again = screen.screen([message(ALICE, 9)])
    assert seen("notice once", (again.verdicts, again.notify_limited)) == ((Verdict.LIMITED,),
                                                                          False)
    assert seen("unspent", screen.screen([message(ALICE, 9)], spend=False).verdicts) == (
        Verdict.OK,)
    paid = screen.screen([message(BOB, n, rate_checked=True) for n in range(3)])
    assert seen("paid", paid.verdicts) == (Verdict.OK,) * 3
    bucket = KEYS.rate_bucket(Platform.TELEGRAM, "1", "501")
    seen("bucket ttl", ttl_of(b.client, bucket))
    seen("noticed ttl", ttl_of(b.client, KEYS.rate_noticed(Platform.TELEGRAM, "1", "501")))
    blocks.block(Platform.WHATSAPP, "602", note="spam")
    assert seen("blocked", blocks.blocks(message(BOB, 1))) is True
    assert seen("blocked screen", screen.screen([message(BOB, 5)]).verdicts) == (
        Verdict.BLOCKED,)
    group = message(GROUP, 1, sender_id="u9")
    assert seen("group sender", blocks.blocks(group)) is False
    blocks.block("line", "u9")
    assert seen("group sender blocked", blocks.blocks(group)) is True
    assert seen("all", [(p.platform, p.person, p.note) for p in blocks.all()]) == [
        (Platform.LINE, "u9", ""), (Platform.WHATSAPP, "602", "spam")]
    assert seen("unblock", (blocks.unblock("line", "u9"), blocks.unblock("line", "u9"))) == (
        True, False)
    with pytest.raises(ValueError):
        blocks.block(Platform.LINE, "")
    limiter = RateLimiter(b.client, messages=1, window_seconds=60)
    decisions = [limiter.check(message(GROUP, n, sender_id="u1")) for n in (1, 1, 2, 3)]
    assert seen("limiter", decisions) == [RateDecision.OK, RateDecision.OK,
                                          RateDecision.LIMITED_NOTICE, RateDecision.LIMITED]
    seen("event ttl", ttl_of(b.client, KEYS.rate_event(Platform.LINE, "3", "g7-1")))
    backlog = Backlog(b.client, stale_after=100)
    assert seen("empty backlog", backlog.oldest_age()) == 0.0
    backlog.add("t-old", at=time.time() - 500)
    backlog.add("t1", at=time.time() - 30)
    backlog.add("t1", at=time.time())  # NX: the first time stays
    assert 29 < seen("oldest", round(backlog.oldest_age(), -1)) < 41
    backlog.sweep()
    assert seen("swept", b.client.zrange(KEYS.backlog(), 0, -1)) == [b"t1"]
    backlog.done("t1")
    assert seen("done", backlog.oldest_age()) == 0.0
    assert seen("busy notice", (backlog.notice_once(ALICE, 60),
                                backlog.notice_once(ALICE, 60))) == (True, False)


def metrics(b: Backend, seen: Seen) -> None:
    recorder = RedisMetrics(b.client, flush_seconds=3600)
    recorder.inc("webhooks", platform="telegram", status="200")
    recorder.inc("webhooks", 2, platform="telegram", status="200")
    recorder.inc("languages", language="xx")  # not a supported language: "other"
    recorder.observe("generation_seconds", 1.5)
    recorder.observe("generation_seconds", 0.2)
    assert seen("pending", recorder.pending()) > 0
    assert seen("flushed", recorder.flush()) is True and recorder.pending() == 0
    assert seen("counter", recorder.counter("webhooks")) == {
        '{"platform":"telegram","status":"200"}': 3.0}
    assert seen("bounded", recorder.counter("languages")) == {'{"language":"other"}': 1.0}
    hist = recorder.histogram("generation_seconds")["{}"]
    assert seen("histogram", (hist["count"], hist["sum"], hist["0.25"], hist["2"])) == (
        2.0, 1.7, 1.0, 2.0)
    recorder.close()
    b.client.rpush("io", "a", "b")
    families = {f.name: f for f in RedisCollector(b.client, queues=("io",)).collect()}
    depth = families["sealion_queue_depth"].samples
    assert seen("depth", [(s.labels["queue"], s.value) for s in depth]) == [("io", 2.0)]
    webhooks = families["sealion_webhooks"].samples
    seen("exported", sorted((tuple(sorted(s.labels.items())), s.value) for s in webhooks))


def mailbox(b: Backend, seen: Seen) -> None:
    box = LocalMailbox(b.client, upload_ttl=100, outbox_ttl=200)
    upload = box.upload(b"photo")
    assert seen("download", box.download(upload)) == b"photo"
    assert seen("no upload", box.download("nothing")) is None
    seen("upload ttl", ttl_of(b.client, KEYS.upload(upload)))
    assert seen("empty", (box.last_id(ALICE), box.read(ALICE))) == ("0-0", [])
    first = box.post(ALICE, {"type": "typing"})
    box.post(ALICE, {"type": "message", "text": "hi", "formatted": "0", "in_reply_to": "1"})
    events = box.read(ALICE)
    assert seen("events", [e for _, e in events]) == [
        {"type": "typing"},
        {"type": "message", "text": "hi", "formatted": "0", "in_reply_to": "1"}]
    assert seen("after first", [e["type"] for _, e in box.read(ALICE, after=first)]) == [
        "message"]
    assert box.last_id(ALICE) == events[-1][0]
    assert seen("waited", [e["type"] for _, e in box.read(ALICE, block_ms=50)]) == [
        "typing", "message"]
    seen("outbox ttl", ttl_of(b.client, KEYS.outbox(ALICE)))
    box.clear(ALICE)
    assert seen("cleared", box.read(ALICE)) == []


def small_stores(b: Backend, seen: Seen) -> None:
    offsets = PollOffsets(b.client, Platform.TELEGRAM, "1")
    assert seen("no offset", offsets.load()) is None
    offsets.save(42)
    assert seen("offset", offsets.load()) == 42
    assert seen("offset ttl", ttl_of(b.client, KEYS.poll_offset(Platform.TELEGRAM, "1"))) == (
        OFFSET_TTL_SECONDS)
    voice = VoiceNotes(b.client, ttl=120)
    voice.save("t1", 0, b"ogg0")
    voice.save("t1", 1, b"ogg1")
    assert seen("voice", (voice.load("t1", 0), voice.load("t1", 2))) == (b"ogg0", None)
    seen("voice ttl", ttl_of(b.client, KEYS.turn_audio("t1", 1)))
    voice.drop("t1", [0, 1])
    voice.drop("t1", [])
    assert seen("dropped", voice.load("t1", 1)) is None
    board = ModelStatusBoard(b.client)
    board.publish("w1", {"chat": {"state": "ready", "reason": "", "details": {}},
                         "guard": {"state": "failed", "reason": "down", "details": {}}})
    b.client.hset(KEYS.model_status(), "w0", json.dumps({"state": "loading", "backend": "x",
                                                        "model": "m"}))
    b.client.hset(KEYS.model_status(), "w2", "not json")
    assert seen("status", sorted(board.of(["w0", "w1", "w2", "w3"]))) == ["w0", "w1"]
    assert seen("chat", board.of_kind(["w0", "w1"], "chat")["w0"]["state"]) == "loading"
    assert seen("guard", list(board.of_kind(["w0", "w1"], "guard"))) == ["w1"]
    assert seen("nobody", board.of([])) == {}
    board.leave("w1")
    assert seen("left", list(board.of(["w1"]))) == []


def erasure(b: Backend, seen: Seen) -> None:
    from storage.log import upgrade_database
    from storage.log.erasure import LogErasure

    database_url = f"sqlite:///{b.folder}/log.db"
    upgrade_database(database_url)
    log = LogErasure(database_url)
    try:
        inbox = Inbox(b.client, dedupe_ttl=60, pending_ttl=60)
        store = ConversationStore(b.client, lease_seconds=30)
        inbox.accept(message(ALICE, 1))
        turn = store.take_turn(ALICE)
        assert turn.turn_id is not None
        store.mark_sent(turn.turn_id, 0)
        RedisHistory(b.client, ttl=300, max_turns=4).save_image(ALICE, b"img")
        AbuseScreen(b.client, messages=5, window_seconds=60).screen([message(ALICE, 1)])
        inbox.accept(message(BOB, 1))  # someone else: stays
        eraser = Erasure(b.client, log, KEYS, hold_seconds=300)
        seen("preview", eraser.preview(Platform.TELEGRAM, "501"))
        seen("report", eraser.erase_person(Platform.TELEGRAM, "501"))
        assert seen("erased", eraser.is_erased(Platform.TELEGRAM, "501")) is True
        assert seen("left of alice", [k for k in b.client.keys("*") if b"501" in k and b":dedupe:" not in k]) == [
            KEYS.erased(Platform.TELEGRAM, "501").encode()]
        assert seen("bob", texts(store.pending(BOB))) == ["m1"]
    finally:
        log.close()


def identities(b: Backend, seen: Seen) -> None:
    from bot.kernel.messages import MessageKind
    from storage.identities import IdentityMap

    def sent(*ids: str, kind: MessageKind = MessageKind.CHAT, previous: tuple[str, ...] = ()
             ) -> InboundMessage:
        key = ConversationKey(platform=Platform.WHATSAPP, bot_id="1", chat_id=ids[-1],
                              user_id=ids[-1])
        return InboundMessage(key=key, event_id="e", message_id="m", sender_id=ids[-1],
                              identities=ids, kind=kind, previous_identities=previous)

    ids = IdentityMap(b.client)
    b.client.rpush(KEYS.history(sent("6590000001").key), "{}")  # phone-keyed, from before
    assert seen("legacy", ids.resolve(sent("SG.1", "6590000001")).key.user_id) == "6590000001"
    assert seen("new", ids.resolve(sent("SG.2", "6590000002")).key.user_id) == "SG.2"
    assert seen("hidden", ids.resolve(sent("SG.2")).key.user_id) == "SG.2"
    ids.resolve(sent("SG.3", kind=MessageKind.IDENTITY, previous=("SG.2",)))
    assert seen("changed", ids.resolve(sent("SG.3")).key.user_id) == "SG.2"
    assert seen("merged", ids.resolve(sent("SG.1", "6590000002")).key.user_id) == "6590000001"
    assert seen("aliases", sorted(ids.aliases(Platform.WHATSAPP, "SG.3"))) == [
        "6590000001", "6590000002", "SG.1", "SG.2", "SG.3"]
    ids.forget(Platform.WHATSAPP, sorted(ids.aliases(Platform.WHATSAPP, "SG.3")))


SCENARIOS = {f.__name__: f for f in (inbox_accept, turns, resume_and_album, leases_and_records,
                                     history, abuse, metrics, mailbox, small_stores, erasure,
                                     identities)}


# --- backends ----------------------------------------------------------------------------------

@pytest.fixture()
def real_backend(redis_server, tmp_path) -> Iterator[Backend]:
    """Database 14 of the suite's redis-server, emptied before and after."""
    url = redis_server.url[:-2] + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    (tmp_path / "redis").mkdir()
    yield Backend("redis", client, lambda: redis.asyncio.Redis.from_url(url),
                  tmp_path / "redis")
    client.flushdb()
    client.close()


@pytest.fixture()
def twin_backend(tmp_path) -> Backend:
    twin = TwinServer()
    (tmp_path / "twin").mkdir()
    return Backend("twin", twin.client(), twin.async_client, tmp_path / "twin")


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.integration), "twin"])
def backend(request) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")


def run(scenario: Callable[[Backend, Seen], None], backend: Backend) -> list[tuple[str, Any]]:
    seen = Seen()
    scenario(backend, seen)
    seen("keyspace", keyspace(backend.client))
    return seen.items


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_store_keeps_its_contract(name, backend):
    run(SCENARIOS[name], backend)


@pytest.mark.integration
@pytest.mark.parametrize("name", SCENARIOS)
def test_the_twin_answers_as_redis_does(name, real_backend, twin_backend):
    expected = run(SCENARIOS[name], real_backend)
    assert run(SCENARIOS[name], twin_backend) == expected


def test_a_drifted_twin_is_caught(twin_backend, tmp_path, monkeypatch):
    """A twin made to drift fails the contract: by a scenario's own assertion (an LTRIM that
    does nothing, inside the accept script), or by the whole record where no assertion looks
    (an EXPIRE that does nothing leaves the outbox without its TTL)."""
    from fakeredis.commands_mixins.generic_mixin import GenericCommandsMixin
    from fakeredis.commands_mixins.list_mixin import ListCommandsMixin

    expected = run(mailbox, twin_backend)

    def drifted() -> Backend:
        twin = TwinServer()
        return Backend("drifted", twin.client(), twin.async_client, tmp_path)

    with monkeypatch.context() as patch:
        patch.setattr(ListCommandsMixin, "ltrim", lambda self, key, start, stop: b"OK")
        with pytest.raises(AssertionError):
            run(inbox_accept, drifted())
    with monkeypatch.context() as patch:
        patch.setattr(GenericCommandsMixin, "expire", lambda self, key, seconds, *args: 1)
        record = run(mailbox, drifted())
    assert record != expected
    assert ("outbox ttl", -1) in record and ("outbox ttl", -1) not in expected
