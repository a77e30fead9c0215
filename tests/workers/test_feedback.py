"""Ratings in the worker's half of the pipeline (#23): a RATING message is never queued for a
turn: the accept path publishes one `record_rating` task per event (a redelivery is dropped,
like a message's); the sent markers keep the platform's message id of each part (so the log
can map a reaction to its answer) at no extra Redis command."""

from __future__ import annotations

import json

import redis

from bot.composition import Services
from bot.kernel.messages import (
    ConversationKey,
    InboundMessage,
    MessageKind,
    Platform,
    Rating,
    RatingSource,
)
from bot.kernel.settings import Settings
from storage.conversations import ConversationStore
from tests.conftest import new_chat_id
from tests.helpers.twins import twin_redis
from workers.celery_app import RECORD_RATING
from workers.turn.delivery import DeliveryLog


def test_sent_markers_keep_the_message_ids():
    store = ConversationStore(twin_redis(), lease_seconds=30)
    store.mark_sent("t1", 0, message_id="1")  # Telegram's first message id is 1
    store.mark_sent("t1", 1)
    store.mark_sent("t1", 2, message_id="wamid.X")
    assert store.sent_part_ids("t1", 4) == {0: "1", 1: None, 2: "wamid.X"}
    assert store.sent_parts("t1", 4) == {0, 1, 2}
    resumed = DeliveryLog(store, "t1")
    assert resumed.is_sent(0) and resumed.is_sent(2) and not resumed.is_sent(3)
    resumed.mark_sent(3, "77")
    assert resumed.message_ids == ("1", "wamid.X", "77")
    fresh = DeliveryLog(store, "t2", fresh=True)
    fresh.mark_sent(0, "5")
    fresh.mark_sent(1)
    assert fresh.message_ids == ("5",)


def test_a_rating_is_published_once_and_never_queued_for_a_turn(redis_server):
    url = redis_server.url[:-2] + "/11"
    services = Services(Settings(_env_file=None, redis_url=url))
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    rating = InboundMessage(key=key, event_id=f"{chat}-r", message_id="77",
                            kind=MessageKind.RATING,
                            rating=Rating(value=-1, source=RatingSource.BUTTON, turn_id="t1"))
    client = redis.Redis.from_url(url)
    try:
        assert services.intake.accept([rating]) == 0
        assert services.intake.accept([rating]) == 0  # redelivered
        assert services.conversations.pending(key) == []
        published = client.lrange("io", 0, -1)
        assert len(published) == 1
        envelope = json.loads(published[0])
        assert envelope["headers"]["task"] == RECORD_RATING
        duplicates = services.metrics.counter("duplicates")['{"platform":"telegram"}']
        assert duplicates >= 1
    finally:
        client.flushdb()
        client.close()
        services.close()


def _service(tmp_path, **overrides):
    import asyncio

    from storage.history import RedisHistory
    from storage.inbox import Inbox
    from storage.log import ConversationLog, upgrade_database
    from storage.metrics import RedisMetrics
    from tests.workers.doubles import RecordingAdapter, ScriptedEngine
    from workers.leases import LeaseKeeper
    from workers.turn import assemble

    client = twin_redis()
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(_env_file=None, database_url=database_url,
                        reply_language_check=False, **overrides)
    store = ConversationStore(client, lease_seconds=30)
    adapter = RecordingAdapter(settings)
    engine = ScriptedEngine("Hello there!", "Second answer")
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()
    service = assemble(settings, store=store, history=RedisHistory(client, ttl=600, max_turns=20),
                       conversation_log=log, metrics=RedisMetrics(client),
                       adapters=lambda platform: adapter, engine=lambda: engine,
                       run=loop.run_until_complete,
                       leases=LeaseKeeper(store, max_hold_seconds=60))
    return service, adapter, engine, log, Inbox(client, dedupe_ttl=60, pending_ttl=60)


def _ask(inbox, chat: str) -> ConversationKey:
    from bot.kernel.messages import TelegramContext

    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    inbox.accept(InboundMessage(key=key, event_id=f"{chat}-0", message_id="0", text="hi",
                                language_hint="en",
                                reply_context=TelegramContext(chat_id=int(chat), message_id=0)))
    return key


def test_answers_carry_the_buttons_and_a_rating_is_stored_without_a_turn(tmp_path):
    service, adapter, engine, log, inbox = _service(tmp_path)
    key = _ask(inbox, str(new_chat_id()))
    service.answer(key, models_here=True)
    [reply] = adapter.replies
    assert reply.feedback  # the turn id, under the answer
    delivery = service.stages.delivery
    tap = InboundMessage(key=key, event_id="cb", message_id="1", kind=MessageKind.RATING,
                         rating=Rating(value=-1, source=RatingSource.BUTTON,
                                       turn_id=reply.feedback))
    assert delivery.rate(tap) == -1
    # The answer went out as message "1" (the double's id): a reaction there replaces it.
    heart = InboundMessage(key=key, event_id="r", message_id="1", kind=MessageKind.RATING,
                           rating=Rating(value=1, source=RatingSource.REACTION, message_id="1"))
    assert delivery.rate(heart) == 1
    unknown = InboundMessage(key=key, event_id="r2", message_id="9", kind=MessageKind.RATING,
                             rating=Rating(value=1, source=RatingSource.REACTION, message_id="9"))
    assert delivery.rate(unknown) is None
    assert len(engine.requests) == 1 and adapter.sent == ["Hello there!"]  # no turn, no text
    log.close()


def test_without_feedback_buttons_answers_carry_none(tmp_path):
    service, adapter, _, log, inbox = _service(tmp_path, feedback_buttons=False)
    service.answer(_ask(inbox, str(new_chat_id())), models_here=True)
    assert [r.feedback for r in adapter.replies] == [None]
    log.close()
