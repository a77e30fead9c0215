"""The turn service's moderation steps on the in-memory twin of Redis and a real SQLite log, with
a recording adapter, a scripted engine and a scripted guard: fail open and closed through a whole turn, a
refused turn resumed from its kept outcome, the rate limit and block list before planning, and
the busy notice."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.kernel.messages import ConversationKey, InboundMessage, Platform, TelegramContext
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text
from storage.abuse import AbuseScreen, Backlog, BlockList
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.inbox import Inbox
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.conftest import new_chat_id
from tests.helpers.conversation_log import find_conversation
from tests.helpers.twins import twin_redis
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.models.guard import GuardRequest, GuardUnavailable, GuardVerdict
from workers.models.guard.base import BaseGuard
from workers.moderation import Moderator
from workers.protocol import Deliver, Generate
from workers.turn import TurnService, assemble


class ScriptedGuard(BaseGuard):
    """Unsafe when the checked text holds "BAD"; raises while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.requests: list[GuardRequest] = []

    def check(self, request: GuardRequest) -> GuardVerdict:
        self.requests.append(request)
        if self.down:
            raise GuardUnavailable("down")
        checked = request.prompt if request.response is None else request.response
        return GuardVerdict("unsafe" if "BAD" in checked else "safe", ("Violent",))


@pytest.fixture()
def world(tmp_path):
    client = twin_redis()
    client.flushdb()
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(database_url=database_url, reply_language_check=False, busy_notice_seconds=1)
    store = ConversationStore(client, lease_seconds=30)
    adapter = RecordingAdapter(settings)
    guard = ScriptedGuard()
    metrics = RedisMetrics(client)
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()
    engines: list[ScriptedEngine] = []

    def build(*answers: str, fail: str = "closed", limit: int = 20) -> TurnService:
        engine = ScriptedEngine(*answers)
        engines.append(engine)
        return assemble(
            settings, store=store, history=RedisHistory(client, ttl=600, max_turns=20),
            conversation_log=log, metrics=metrics, adapters=lambda platform: adapter,
            engine=lambda: engine, run=loop.run_until_complete,
            leases=LeaseKeeper(store, max_hold_seconds=60),
            moderator=Moderator(guard, fail=fail, metrics=metrics),
            abuse=AbuseScreen(client, messages=limit, window_seconds=60),
            backlog=Backlog(client, stale_after=60))

    yield {"build": build, "client": client, "adapter": adapter, "guard": guard, "log": log,
           "metrics": metrics, "engines": engines,
           "inbox": Inbox(client, dedupe_ttl=60, pending_ttl=60)}
    loop.close()
    log.close()
    client.flushdb()


def arrive(world, *texts: str, chat: str | None = None) -> ConversationKey:
    chat = chat or str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    for body in texts:
        world["inbox"].accept(InboundMessage(
            key=key, event_id=f"{chat}-{time.monotonic_ns()}", message_id="1", text=body,
            language_hint="en", reply_context=TelegramContext(chat_id=int(chat), message_id=1)))
    return key


def turn(service: TurnService, key: ConversationKey):
    step = service.start(key)
    if isinstance(step, Generate):
        outcome = service.generate(step.job)
        service.deliver(step.turn, step.lease, outcome)
        return outcome
    assert isinstance(step, Deliver)
    service.deliver(step.turn, step.lease, step.outcome)
    return None


def test_fail_open_answers_unchecked_and_counts_it(world):
    world["guard"].down = True
    service = world["build"]("Sunny and 31 degrees.", fail="open")
    outcome = turn(service, arrive(world, "Weather in Singapore today?"))
    assert world["adapter"].sent == ["Sunny and 31 degrees."]
    assert [c.label for c in outcome.guard] == ["error", "error"] and outcome.refused is None
    assert world["metrics"].counter("guard_failures") == {
        '{"mode":"open","side":"input"}': 1.0, '{"mode":"open","side":"output"}': 1.0}


def test_fail_closed_apologises_and_never_calls_the_model(world):
    world["guard"].down = True
    service = world["build"]("never used")
    outcome = turn(service, arrive(world, "Weather in Singapore today?"))
    assert world["adapter"].sent == [text(Text.APOLOGY, "en")]
    assert outcome.refused == "input" and world["engines"][-1].requests == []


def test_refused_input_and_withheld_answer(world):
    service = world["build"]("A BAD answer.")
    key = arrive(world, "Tell me something BAD please")
    outcome = turn(service, key)
    assert world["adapter"].sent == [text(Text.GUARD_REFUSAL, "en")]
    assert world["engines"][-1].requests == [] and outcome.refused == "input"
    assert RedisHistory(world["client"], ttl=600, max_turns=20).load(key) == []

    world["adapter"].sent.clear()
    key = arrive(world, "Tell me a story")
    outcome = turn(service, key)
    assert world["adapter"].sent == [text(Text.GUARD_REFUSAL, "en")]
    assert (outcome.refused, outcome.withheld) == ("output", "A BAD answer.")
    row = find_conversation(world["log"], key)
    inbound, outbound = world["log"].thread(row.id).messages
    assert (inbound.guard_label, outbound.guard_label) == ("safe", "unsafe")
    assert outbound.guard_withheld == "A BAD answer." and outbound.guard_categories == "Violent"


def test_the_input_check_reads_the_persons_previous_turn_too(world):
    """A request split over two turns is read together (the person's words, not the answers)."""
    service = world["build"]("Sunny and 31 degrees.", "Rain.")
    key = arrive(world, "Weather in Singapore today?")
    turn(service, key)
    arrive(world, "And tomorrow?", chat=key.chat_id)
    turn(service, key)
    inputs = [r.prompt for r in world["guard"].requests if r.response is None]
    assert inputs[-2:] == ["Weather in Singapore today?",
                           "Weather in Singapore today?\nAnd tomorrow?"]
    assert world["adapter"].sent == ["Sunny and 31 degrees.", "Rain."]


def test_the_operators_refusal_replaces_the_localized_one(world):
    service = world["build"]()
    service.stages.moderation.moderator.blocked_reply = "Not here, friend."  # type: ignore[union-attr]
    turn(service, arrive(world, "BAD"))
    assert world["adapter"].sent == ["Not here, friend."]


def test_rate_limit_holds_messages_and_notices_once(world):
    service = world["build"]("one", "two", limit=2)
    key = arrive(world, "first question", "second question", "third", "fourth")
    turn(service, key)
    assert world["adapter"].sent == [text(Text.RATE_LIMITED, "en"), "one"]
    prompt = world["engines"][-1].requests[0].turns[-1].text
    assert "first question" in prompt and "second question" in prompt and "third" not in prompt
    world["adapter"].sent.clear()
    arrive(world, "fifth", chat=key.chat_id)
    assert turn(service, key) is None  # held: no model work, no second notice
    assert world["adapter"].sent == []
    row = find_conversation(world["log"], key)
    assert world["log"].thread(row.id).messages[-1].guard_label == "rate_limited"
    assert world["metrics"].counter("rate_limited") == {'{"platform":"telegram"}': 3.0}


def test_blocked_person_gets_nothing_and_is_logged(world):
    service = world["build"]("never used")
    key = arrive(world, "hello?")
    BlockList(world["client"]).block(Platform.TELEGRAM, key.user_id)
    assert turn(service, key) is None
    assert world["adapter"].sent == [] and world["guard"].requests == []
    [inbound] = world["log"].thread(find_conversation(world["log"], key).id).messages
    assert (inbound.text, inbound.guard_label) == ("hello?", "blocked")


def test_busy_notice_when_an_answer_waits_too_long(world):
    service = world["build"]("answer")
    Backlog(world["client"], stale_after=60).add("someone-else", at=time.time() - 5)
    key = arrive(world, "hi there")
    step = service.start(key)
    assert world["adapter"].sent == [text(Text.BUSY, "en")]
    assert isinstance(step, Generate)
    service.deliver(step.turn, step.lease, service.generate(step.job))
    assert world["adapter"].sent == [text(Text.BUSY, "en"), "answer"]
    # Once a window per conversation.
    service = world["build"]("again")
    arrive(world, "and again", chat=key.chat_id)
    turn(service, key)
    assert world["adapter"].sent[-1] == "again" and world["adapter"].sent.count(
        text(Text.BUSY, "en")) == 1
