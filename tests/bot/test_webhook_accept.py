"""The webhook's accept (bot/web/webhooks.py, workers/intake.py) on a real Redis of the test's
own, with a real Celery worker of the service's configuration consuming what it publishes
(tests/helpers/celery_probe.py: its `process_conversation` records that it ran):

- one Lua script per message and nothing else: the wake-up is LPUSHed by the script when the
  conversation was idle, and a real worker runs it (an album's after its countdown); the
  counters are in process memory until a flush, and /metrics flushes its own first;
- while Redis is away: 503 with Retry-After, and the redelivery is accepted afterwards;
- the blocking twin (`Services.intake`, for polling and the local chats) publishes the same
  wake-up.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bot.cli.embedded_redis import EmbeddedRedis
from bot.composition import Services
from bot.kernel.messages import ConversationKey, InboundMessage, Platform
from bot.kernel.settings import Settings
from bot.web.app import create_app
from tests.conftest import TELEGRAM_TOKEN, new_chat_id
from tests.helpers.celery_probe import ProbeWorker, records
from tests.helpers.updates import photo_update, text_update
from tests.helpers.waiting import wait_until

SECRET = secrets.token_urlsafe(24)
ALBUM_WINDOW = 1.5


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop()


@pytest.fixture()
def settings(own_redis, telegram_api, tmp_path) -> Settings:
    return Settings(_env_file=None, redis_url=own_redis.url, telegram_bot_token=TELEGRAM_TOKEN,
                    telegram_webhook_secret=SECRET, telegram_api_base_url=telegram_api.base_url,
                    album_window_seconds=ALBUM_WINDOW, metrics_flush_seconds=3600,
                    data_dir=str(tmp_path / "data"))


@pytest.fixture()
def worker(own_redis, tmp_path) -> Iterator[ProbeWorker]:
    probe = ProbeWorker(own_redis.url, tmp_path / "worker.log").start()
    yield probe
    probe.stop()


def post(client: TestClient, update: dict):
    return client.post("/webhooks/telegram", json=update,
                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})


def _stats(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in client.info("commandstats").items()}


def _published(client: redis.Redis, before: dict[str, int]) -> int:
    """Broker messages LPUSHed since `before` (by the accept's script, or a worker's restore)."""
    return _stats(client).get("lpush", 0) - before.get("lpush", 0)


def test_one_script_per_message_and_a_real_worker_runs_the_wake_up(settings, worker,
                                                                   own_redis):
    client = redis.Redis.from_url(own_redis.url)
    chat = new_chat_id()
    key = {"platform": "telegram", "bot_id": TELEGRAM_TOKEN.split(":")[0],
           "chat_id": str(chat), "user_id": str(chat)}
    with TestClient(create_app(settings), base_url="http://127.0.0.1",
                    client=("127.0.0.1", 50000)) as api:
        assert post(api, text_update(new_chat_id(), "warm-up")).status_code == 200
        wait_until(lambda: len(records(client)) == 1, 30, "the warm-up's wake-up to run")
        before = _stats(client)
        first = text_update(chat, "Selamat pagi")
        assert post(api, first).status_code == 200
        [ran] = wait_until(lambda: [r for r in records(client) if r["args"] == [key]], 30,
                           "the worker to run the wake-up")
        used = {k: v - before.get(k, 0) for k, v in _stats(client).items()
                if v != before.get(k, 0)}
        used["rpush"] -= 1  # the probe's record of its run
        # The accept's script and its wake-up (LPUSH); the worker's BRPOP; this test's reads.
        assert {k: v for k, v in used.items() if k not in ("brpop", "info", "lrange") and v
                } == {"evalsha": 1, "set": 1, "rpush": 1, "expire": 1, "zadd": 1, "lpush": 1}
        assert ran["task"] == "workers.tasks.process_conversation" and ran["eta"] is None
        # The conversation is active (nothing ends turns here): no second wake-up. The accept
        # publishes inside its script, so Redis's own count says so when the request returns.
        before = _stats(client)
        assert post(api, text_update(chat, "Apa khabar?")).status_code == 200
        assert post(api, first).status_code == 200  # a redelivery: dropped, counted
        assert _published(client, before) == 0 and client.llen("io") == 0
        assert len([r for r in records(client) if r["args"] == [key]]) == 1
        # Counted in memory only: nothing in Redis until /metrics flushes this process.
        assert not client.exists("sealion:metrics:counter:duplicates")
        text = api.get("/metrics").text
        assert 'sealion_duplicates_total{platform="telegram"} 1.0' in text
        assert 'sealion_webhooks_total{platform="telegram",status="200"} 4.0' in text


def test_an_albums_wake_up_runs_after_its_countdown(settings, worker, own_redis):
    client = redis.Redis.from_url(own_redis.url)
    chat = new_chat_id()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as api:
        before = _stats(client)
        sent = time.time()
        assert post(api, photo_update(chat, media_group_id="album-1")).status_code == 200
        assert post(api, photo_update(chat, media_group_id="album-1")).status_code == 200
        [ran] = wait_until(lambda: [r for r in records(client)
                                    if r["args"][0]["chat_id"] == str(chat)], 30,
                           "the album's wake-up")
    assert ran["eta"] is not None
    assert ran["at"] >= sent + ALBUM_WINDOW - 0.1
    assert _published(client, before) == 1  # one wake-up, never published again
    assert len(records(client)) == 1


def test_while_redis_is_away_the_webhook_answers_503_and_the_retry_is_accepted(settings,
                                                                               own_redis):
    chat = new_chat_id()
    update = text_update(chat, "Halo?")
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as api:
        own_redis.stop()
        try:
            refused = post(api, update)
        finally:
            own_redis.start()
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert post(api, update).status_code == 200  # the platform's retry
    client = redis.Redis.from_url(own_redis.url)
    assert client.llen("io") == 1


def test_polling_and_the_local_chats_publish_the_same_wake_up(settings, worker, own_redis):
    services = Services(settings)
    client = redis.Redis.from_url(own_redis.url)
    chat = str(new_chat_id())
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id=chat, user_id=chat)
    try:
        before = _stats(client)
        accepted = services.intake.accept([
            InboundMessage(key=key, event_id=f"{chat}-{n}", message_id=str(n), text="hi")
            for n in range(3)])
        assert accepted == 3
        assert _published(client, before) == 1  # one wake-up for the three messages
        [ran] = wait_until(lambda: records(client), 30, "the wake-up")
        assert ran["args"] == [key.model_dump(mode="json")]
        assert len(records(client)) == 1
    finally:
        services.close()
