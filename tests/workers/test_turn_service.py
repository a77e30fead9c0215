"""The turn service on a real Redis and a real SQLite log, with a recording adapter and a scripted
engine: the steps of a turn, a resumed turn, and every failure ending the turn."""

from __future__ import annotations

import asyncio

import pytest
import redis

from adapters.base import PermanentSendError, TransientSendError
from bot.messages import ConversationKey, InboundMessage, Platform
from bot.settings import Settings
from bot.texts import Text, text
from storage.conversations import ConversationStore, Inbox
from storage.history import RedisHistory
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.conftest import new_chat_id
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.faults import FaultInjector, InjectedFault
from workers.jobs import Deliver, Generate, Idle
from workers.leases import LeaseKeeper
from workers.pipeline import TurnService


@pytest.fixture()
def world(redis_server, tmp_path):
    client = redis.Redis.from_url(redis_server.url[:-2] + "/12")
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(redis_url=redis_server.url[:-2] + "/12", database_url=database_url,
                        reply_language_check=False)
    store = ConversationStore(client, lease_seconds=30)
    adapter = RecordingAdapter(settings)
    engine = ScriptedEngine("Hello there!", "Second answer")
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()

    def build(faults: str | None = None) -> TurnService:
        return TurnService(settings, store=store, history=RedisHistory(client, ttl=600,
                                                                       max_turns=20),
                           conversation_log=log, metrics=RedisMetrics(client),
                           adapters=lambda platform: adapter, engine=lambda: engine,
                           run=loop.run_until_complete,
                           leases=LeaseKeeper(store, max_hold_seconds=60),
                           faults=FaultInjector(faults))

    yield {"build": build, "client": client, "adapter": adapter, "engine": engine,
           "store": store, "log": log, "inbox": Inbox(client, dedupe_ttl=60, pending_ttl=60)}
    loop.close()
    log.close()
    client.flushdb()
    client.close()


def arrive(world, *texts: str) -> ConversationKey:
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    for n, body in enumerate(texts):
        world["inbox"].accept(InboundMessage(key=key, event_id=f"{chat}-{n}", message_id=str(n),
                                             text=body, language_hint="en",
                                             reply_context={"chat_id": chat, "private": True}))
    return key


def history_texts(world, key) -> list[str]:
    return [e.text for e in RedisHistory(world["client"], ttl=600, max_turns=20).load(key)]


def test_a_turn_goes_start_generate_deliver_and_writes_each_record_once(world):
    service = world["build"]()
    key = arrive(world, "hi")
    step = service.start(key)
    assert isinstance(step, Generate)
    assert step.job.turns[-1].text == "hi" and step.job.lease == step.lease
    outcome = service.generate(step.job)
    assert outcome.text == "Hello there!"
    assert service.deliver(step.plan, step.lease, outcome) is False
    assert world["adapter"].sent == ["Hello there!"]
    assert history_texts(world, key) == ["hi", "Hello there!"]
    # A redelivered delivery and a redelivered job change nothing.
    assert service.deliver(step.plan, step.lease, outcome) is False
    assert service.generate(step.job).skipped
    assert world["adapter"].sent == ["Hello there!"]
    assert history_texts(world, key) == ["hi", "Hello there!"]
    assert isinstance(service.start(key), Idle)


def test_a_resumed_turn_delivers_its_kept_outcome_without_generating_again(world):
    service = world["build"]()
    store: ConversationStore = world["store"]
    key = arrive(world, "hi")
    step = service.start(key)
    assert isinstance(step, Generate)
    service.generate(step.job)
    # The worker died before delivering: its lease lapses (here: removed by hand).
    world["client"].delete(f"sealion:conv:{key.as_path()}:turn")
    resumed = service.start(key)
    assert isinstance(resumed, Deliver) and resumed.lease == f"{step.plan.turn_id}.1"
    assert resumed.outcome is not None and resumed.outcome.text == "Hello there!"
    service.deliver(resumed.plan, resumed.lease, resumed.outcome)
    assert world["adapter"].sent == ["Hello there!"]
    assert len(world["engine"].requests) == 1
    # The dead epoch's delivery arriving late does nothing.
    assert service.deliver(step.plan, step.lease, service.generate(step.job)) is False
    assert world["adapter"].sent == ["Hello there!"]
    assert not store.has_work(key)


def test_a_transient_send_error_propagates_and_giving_up_apologises(world):
    service = world["build"]()
    key = arrive(world, "hi")
    step = service.start(key)
    assert isinstance(step, Generate)
    outcome = service.generate(step.job)
    world["adapter"].fail_with = [TransientSendError("timeout", 1.0)]
    with pytest.raises(TransientSendError):
        service.deliver(step.plan, step.lease, outcome)
    assert world["store"].has_work(key)  # still in flight, for the retry
    world["adapter"].fail_with = [TransientSendError("timeout", 1.0)]
    with pytest.raises(TransientSendError):
        service.deliver(step.plan, step.lease, outcome)
    service.give_up(step.plan, step.lease, TransientSendError("timeout", 1.0))
    assert world["adapter"].sent == [text(Text.APOLOGY, "en")]
    assert not world["store"].has_work(key)


def test_a_permanent_refusal_ends_the_turn(world):
    service = world["build"]()
    key = arrive(world, "hi")
    step = service.start(key)
    assert isinstance(step, Generate)
    world["adapter"].fail_with = [PermanentSendError("blocked", code="403")]
    assert service.deliver(step.plan, step.lease, service.generate(step.job)) is False
    assert world["adapter"].sent == [] and not world["store"].has_work(key)
    assert history_texts(world, key) == ["hi", "Hello there!"]


@pytest.mark.parametrize("step", ["prepare", "generate", "send", "record"])
def test_an_unexpected_exception_in_any_step_ends_in_the_apology(world, step):
    service = world["build"](faults=step)
    key = arrive(world, "hi", "are you there?")
    started = service.start(key)
    if step == "prepare":
        assert isinstance(started, Idle)
    else:
        assert isinstance(started, Generate)
        outcome = service.generate(started.job)
        try:
            service.deliver(started.plan, started.lease, outcome)
        except InjectedFault as exc:  # what the task does with an unexpected exception
            service.give_up(started.plan, started.lease, exc)
    # One answer: the apology, or the answer itself when it went out before the failure.
    expected = "Hello there!" if step == "record" else text(Text.APOLOGY, "en")
    assert world["adapter"].sent == [expected]
    assert not world["store"].has_work(key)
