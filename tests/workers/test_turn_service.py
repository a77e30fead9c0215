"""The turn service on the in-memory twin of Redis and a real SQLite log, with a recording adapter
and a scripted engine: the steps of a turn, a resumed turn, and every failure ending the turn."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import PermanentSendError, TransientSendError
from bot.kernel.messages import ConversationKey, InboundMessage, Platform, TelegramContext
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.inbox import Inbox
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.conftest import new_chat_id
from tests.helpers.twins import twin_redis
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.faults import FaultInjector
from workers.leases import LeaseKeeper
from workers.protocol import Deliver, Generate, Idle
from workers.turn import TurnService, assemble


@pytest.fixture()
def world(tmp_path):
    client = twin_redis()
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(database_url=database_url, reply_language_check=False)
    store = ConversationStore(client, lease_seconds=30)
    adapter = RecordingAdapter(settings)
    engine = ScriptedEngine("Hello there!", "Second answer")
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()

    def build(faults: str | None = None) -> TurnService:
        return assemble(settings, store=store, history=RedisHistory(client, ttl=600,
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
                                             reply_context=TelegramContext(chat_id=int(chat),
                                                                           message_id=n)))
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
    assert service.deliver(step.turn, step.lease, outcome) is False
    assert world["adapter"].sent == ["Hello there!"]
    assert history_texts(world, key) == ["hi", "Hello there!"]
    # A redelivered delivery and a redelivered job change nothing.
    assert service.deliver(step.turn, step.lease, outcome) is False
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
    assert isinstance(resumed, Deliver) and resumed.lease == f"{step.turn.turn_id}.1"
    assert resumed.outcome is not None and resumed.outcome.text == "Hello there!"
    service.deliver(resumed.turn, resumed.lease, resumed.outcome)
    assert world["adapter"].sent == ["Hello there!"]
    assert len(world["engine"].requests) == 1
    # The dead epoch's delivery arriving late does nothing.
    assert service.deliver(step.turn, step.lease, service.generate(step.job)) is False
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
        service.deliver(step.turn, step.lease, outcome)
    assert world["store"].has_work(key)  # still in flight, for the retry
    world["adapter"].fail_with = [TransientSendError("timeout", 1.0)]
    with pytest.raises(TransientSendError):
        service.deliver(step.turn, step.lease, outcome)
    service.give_up(key, step.lease, TransientSendError("timeout", 1.0), turn=step.turn)
    assert world["adapter"].sent == [text(Text.APOLOGY, "en")]
    assert not world["store"].has_work(key)


def test_a_permanent_refusal_ends_the_turn(world):
    service = world["build"]()
    key = arrive(world, "hi")
    step = service.start(key)
    assert isinstance(step, Generate)
    world["adapter"].fail_with = [PermanentSendError("blocked", code="403")]
    assert service.deliver(step.turn, step.lease, service.generate(step.job)) is False
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
        # The turn service's one failure policy ends the turn with the apology itself.
        service.deliver(started.turn, started.lease, outcome)
    # One answer: the apology, or the answer itself when it went out before the failure.
    expected = "Hello there!" if step == "record" else text(Text.APOLOGY, "en")
    assert world["adapter"].sent == [expected]
    assert not world["store"].has_work(key)


def test_a_send_refused_in_a_turn_carried_inline_is_retried_after_its_backoff(world,
                                                                              monkeypatch):
    """A worker that hosts the models carries the turn itself (process_conversation: start,
    generate, deliver). A send the platform refuses for now is delivered again after its
    backoff, as on the queued path (deliver_reply), and the part already sent is not sent
    twice."""
    from types import SimpleNamespace

    from celery import Celery

    from workers import tasks

    service = world["build"]()
    settings = Settings(send_max_retries=3)
    app = Celery("inline-retry", set_as_current=False)
    app.sealion = SimpleNamespace(settings=settings, hosts_models=True, turns=service,
                                  metrics=service.metrics)
    scheduled: list[dict] = []
    monkeypatch.setattr(tasks.deliver_reply, "apply_async",
                        lambda args, **options: scheduled.append({"args": args, **options}))
    key = arrive(world, "hi")
    adapter: RecordingAdapter = world["adapter"]
    world["engine"].answers = ["x" * 5000]  # two parts: the first goes out, the second fails
    adapter.fail_with = [None, TransientSendError("flood", 7.0, code="429")]
    app.tasks["workers.tasks.process_conversation"].apply(
        args=[key.model_dump(mode="json")], throw=True)
    assert len(adapter.sent) == 1 and world["store"].has_work(key)
    assert len(scheduled) == 1, "the refused send was never scheduled again"
    retry = scheduled[0]
    assert retry["countdown"] == 7.0 and retry["retries"] == 1
    assert retry["queue"] == "io"
    # The retry, run when its backoff is over, sends what is left, once.
    app.tasks["workers.tasks.deliver_reply"].apply(args=retry["args"], retries=1, throw=True)
    assert len(adapter.sent) == 2 and "".join(adapter.sent) == "x" * 5000
    assert not world["store"].has_work(key)
