"""The hand-off hold (issue 23): /human, or a sure request in words, holds the conversation; while
held the bot does not answer and the model is never asked; the person is told once; their words
reach the log and the history; release or the TTL gives the conversation back to the bot, with
everything said meanwhile in its history.

Turns run on the in-memory twin of Redis and a real SQLite log (tests/helpers/turn_world.py):
`world.engine.requests` counts the model's requests.
"""

from __future__ import annotations

import pytest

from bot.kernel.handoff_words import Intent, handoff_intent
from bot.kernel.texts import Text, text
from storage.handoff import HandoffStore, Hold
from storage.history import RedisHistory
from tests.helpers.conversation_log import find_conversation
from tests.helpers.turn_world import TurnWorld

STARTED = text(Text.HANDOFF_STARTED, "en")
CONFIRM = text(Text.HANDOFF_CONFIRM, "en")


@pytest.fixture()
def world(tmp_path):
    world = TurnWorld(None, tmp_path)
    yield world
    world.close()


def holds(world: TurnWorld, ttl: int = 3600) -> HandoffStore:
    return HandoffStore(world.client, ttl=ttl)


def logged(world: TurnWorld, key) -> list[tuple[str, str]]:
    row = find_conversation(world.log, key)
    assert row is not None
    thread = world.log.thread(row.id)
    assert thread is not None
    return [(m.direction, m.text) for m in thread.messages]


def history(world: TurnWorld, key) -> list[tuple[str, str]]:
    entries = RedisHistory(world.client, ttl=600, max_turns=20).load(key)
    return [(e.role, e.text) for e in entries]


def test_human_holds_the_conversation_tells_once_and_the_model_is_never_asked(world):
    service = world.service("Hello there!")
    key = world.arrive("/human")
    world.turn(service, key)
    assert world.adapter.sent == [STARTED]
    hold = holds(world).get(key)
    assert hold is not None and hold.by == "person" and hold.notified

    for words in ("are you there?", "/human", "please answer"):
        world.arrive(words, chat=key.chat_id)
        world.turn(service, key)
    assert world.adapter.sent == [STARTED]  # told once, nothing else said
    assert world.engine.requests == []
    assert [t for d, t in logged(world, key) if d == "in"] == [
        "/human", "are you there?", "/human", "please answer"]
    assert history(world, key) == [("user", "are you there?"), ("user", "/human"),
                                   ("user", "please answer")]


def test_release_gives_the_conversation_back_with_everything_said_meanwhile(world):
    service = world.service("Welcome back!")
    key = world.arrive("I want to talk to a human")
    world.turn(service, key)
    assert world.adapter.sent == [STARTED]
    assert world.engine.requests == []
    world.arrive("my order 42 is late", chat=key.chat_id)
    world.turn(service, key)
    assert holds(world).release(key) is not None

    world.arrive("hello again", chat=key.chat_id)
    world.turn(service, key)
    assert world.adapter.sent == [STARTED, "Welcome back!"]
    (request,) = world.engine.requests
    said = repr(request.turns)
    assert "I want to talk to a human" in said and "my order 42 is late" in said


def test_the_hold_ends_by_itself_after_its_time_to_live(world):
    service = world.service("Back to me.")
    key = world.arrive("/human")
    world.turn(service, key)
    name = world.store.keys.handoff(key)
    assert 3500 < world.client.ttl(name) <= 3600  # HANDOFF_TTL_SECONDS, the default
    world.client.delete(name)  # what the TTL does when it runs out
    world.arrive("anyone?", chat=key.chat_id)
    world.turn(service, key)
    assert world.adapter.sent == [STARTED, "Back to me."]


def test_an_admin_take_over_is_told_on_the_next_message_once(world):
    service = world.service()
    key = world.arrive("hi", chat=None)
    holds(world).start(key, by="admin", operator="ana")
    world.turn(service, key)
    world.arrive("hello?", chat=key.chat_id)
    world.turn(service, key)
    assert world.adapter.sent == [STARTED]
    assert world.engine.requests == []


def test_an_unsure_request_is_answered_and_asks_to_confirm(world):
    service = world.service("An agent is a program that acts.")
    key = world.arrive("agent?")
    world.turn(service, key)
    assert world.adapter.sent == [CONFIRM, "An agent is a program that acts."]
    assert holds(world).get(key) is None


def test_a_held_turn_costs_no_extra_redis_round_trip_to_find_the_hold(world):
    """The hold is read inside start_turn's script (its MGET), not by a command of its own."""
    key = world.arrive("/human")
    world.turn(world.service(), key)
    world.arrive("still there?", chat=key.chat_id)
    started = world.store.start_turn(key)
    assert Hold.from_json(started.handoff) is not None
    world.store.finish_turn(key, started.lease or "")


@pytest.mark.parametrize(("message", "intent"), [
    ("I want to talk to a human", Intent.SURE),
    ("Can I speak to a person please?", Intent.SURE),
    ("ขอคุยกับเจ้าหน้าที่ครับ", Intent.SURE),
    ("转人工", Intent.SURE),
    ("Saya mau bicara dengan petugas", Intent.SURE),
    ("Tôi muốn gặp nhân viên", Intent.SURE),
    ("Boleh hubungi pegawai?", Intent.SURE),
    ("human?", Intent.UNSURE),
    ("admin", Intent.UNSURE),
    ("what is a human agent in AI and how does it compare with other kinds of software?",
     Intent.UNSURE),
    ("what are humans made of", None),
    ("人工智能是什么？", None),
    ("tomato soup recipe", None),
    ("", None),
])
def test_requests_in_words(message, intent):
    assert handoff_intent(message) is intent


def test_matching_is_linear_on_a_long_text():
    assert handoff_intent("a" * 200_000) is None
    assert handoff_intent("talk to a human " * 10_000) is Intent.UNSURE


def test_operators_are_notified_once_a_hold(world, monkeypatch):
    told: list[tuple[str, str]] = []
    monkeypatch.setattr("workers.handoff_notify.HandoffNotifier.requested",
                        lambda self, platform, language: told.append((platform, language)))
    service = world.service()
    key = world.arrive("/human")
    world.turn(service, key)
    world.arrive("/human", chat=key.chat_id)
    world.turn(service, key)
    assert told == [("telegram", "en")]
