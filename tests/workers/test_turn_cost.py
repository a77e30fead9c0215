"""What a turn costs Redis, counted as `INFO commandstats` counts (every command inside a Lua
script too), on a redis-server of this test's own: a text turn in a worker that hosts the model
starts in one script, finishes in one, and does a handful of commands between. The benchmark
(benchmarks/turn_cost.py) counts the whole service the same way, Celery and the webhook included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from bot.cli.embedded_redis import EmbeddedRedis
from bot.kernel.messages import (
    ConversationKey,
    InboundMessage,
    Platform,
    TelegramContext,
    WhatsAppContext,
)
from bot.kernel.settings import Settings
from storage.abuse import AbuseScreen, Backlog
from storage.conversations import ConversationStore
from storage.history import RedisHistory
from storage.inbox import Inbox
from storage.log import ConversationLog, upgrade_database
from storage.metrics import RedisMetrics
from tests.workers.doubles import RecordingAdapter, ScriptedEngine
from workers.leases import LeaseKeeper
from workers.turn import assemble

#: The worker's side of a one-message text turn (the benchmark's figure adds the webhook's
#: accept script and the Celery wake-up): start 9, screen 5, busy-notice backlog 3, the kept
#: outcome 1, one reply part 1, finish 10.
WORKER_COMMANDS = 29
#: A WhatsApp turn under WHATSAPP_MONTHLY_MESSAGE_BUDGET adds the budget's GET at the screen and,
#: for its one part, the month's INCR and EXPIRE beside the sent marker (workers/turn/budget.py).
BUDGET_COMMANDS = 3


@pytest.fixture()
def own_redis(tmp_path) -> Iterator[redis.Redis]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.stop()


def commands(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in client.info("commandstats").items()}


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    # INFO itself is left out: it is this test's own reading.
    return {k: after[k] - before.get(k, 0) for k in after
            if k != "info" and after[k] - before.get(k, 0)}


@pytest.mark.parametrize("budget", [0, 1000], ids=["telegram", "whatsapp-budget"])
def test_a_text_turn_costs_the_worker_a_fixed_handful_of_commands(own_redis, tmp_path, budget):
    database_url = f"sqlite:///{tmp_path}/log.db"
    upgrade_database(database_url)
    settings = Settings(_env_file=None, database_url=database_url, reply_language_check=False,
                        whatsapp_monthly_message_budget=budget)
    store = ConversationStore(own_redis, lease_seconds=30)
    log = ConversationLog(database_url)
    loop = asyncio.new_event_loop()
    adapter = RecordingAdapter(settings)
    history = RedisHistory(own_redis, ttl=600, max_turns=20)
    engine = ScriptedEngine("Hello!", "Again!")
    service = assemble(settings, store=store, history=history, conversation_log=log,
                       metrics=RedisMetrics(own_redis), adapters=lambda platform: adapter,
                       engine=lambda: engine,
                       run=loop.run_until_complete,
                       leases=LeaseKeeper(store, max_hold_seconds=60),
                       abuse=AbuseScreen(own_redis, messages=20, window_seconds=60),
                       backlog=Backlog(own_redis, stale_after=60))
    inbox = Inbox(own_redis, dedupe_ttl=60, pending_ttl=60)
    platform = Platform.WHATSAPP if budget else Platform.TELEGRAM
    key = ConversationKey(platform=platform, bot_id="1", chat_id="5", user_id="5")
    try:
        # The first turn loads the scripts into Redis (once a process); the second one also
        # reads a history: that one is counted.
        for n, text in enumerate(["hi", "and now?"]):
            context = (WhatsAppContext(to="5", message_id=f"wamid.{n}") if budget
                       else TelegramContext(chat_id=5, message_id=n))
            inbox.accept(InboundMessage(key=key, event_id=f"e{n}", message_id=str(n),
                                        text=text, language_hint="en", reply_context=context))
            before = commands(own_redis)
            step, more = service.answer(key, models_here=True)
            cost = spent(before, commands(own_redis))
            assert not more and step is None  # answered here: nothing left to send on
            if n == 0:
                continue
            # Metrics are flushed from process memory every few seconds, not per turn.
            for name in ("hincrby", "hincrbyfloat"):
                cost.pop(name, None)
            limit = WORKER_COMMANDS + (BUDGET_COMMANDS if budget else 0)
            assert sum(cost.values()) <= limit <= 40, str(sorted(cost.items()))
            if budget:
                assert cost.get("incrby") == 1  # the one part counted (redis-py sends INCRBY) in the month
            # One script to start and one to finish the turn; nothing is read twice.
            assert cost["evalsha"] == 3  # start, the screen, finish
            assert cost.get("lrange") == 2  # the pending messages and the history, at start
        assert adapter.sent == ["Hello!", "Again!"]
        assert [e.text for e in history.load(key)] == ["hi", "Hello!", "and now?", "Again!"]
    finally:
        loop.close()
        log.close()
