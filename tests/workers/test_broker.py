"""The broker transport (workers/broker.py), with a real redis-server of the test's own (so
`INFO commandstats` counts only this test) and a real Celery worker of the service's
configuration (tests/helpers/celery_probe.py):

- a hop costs its LPUSH and its BRPOP: no acknowledgement bookkeeping in Redis (the stock
  transport adds MULTI ZADD HSET EXEC on receipt and MULTI ZREM HDEL EXEC on ack);
- an idle worker polls once a second and publishes no heartbeat events;
- the prefetch limit still holds (the accounting is in memory);
- at a warm stop the messages a worker holds for their countdown go back to the queue, and a
  task running then finishes and is not put back;
- the wake-up the accept script publishes is, field for field, what `send_task` writes;
- the earlier fix: a channel whose connection celery already collected fails with a
  connection error, not AttributeError (the whole scenario, a Redis restart with tasks in
  flight, is tests/faults/test_recovery.py).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from bot.cli.embedded_redis import EmbeddedRedis
from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.settings import Settings
from tests.helpers.celery_probe import ProbeWorker, records
from tests.helpers.waiting import wait_until
from workers.broker import QoS, Transport
from workers.celery_app import create_celery, wake_up


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop()


@pytest.fixture()
def client(own_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(own_redis.url)
    yield made
    made.close()


def _stats(client: redis.Redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in client.info("commandstats").items()}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _app(url: str):
    return create_celery(Settings(_env_file=None, redis_url=url))


def test_a_hop_costs_its_publish_and_its_pop(own_redis, client, tmp_path):
    worker = ProbeWorker(own_redis.url, tmp_path / "worker.log").start()
    app = _app(own_redis.url)
    try:
        app.send_task("probe.record", args=["warm-up"], queue="io")
        wait_until(lambda: client.llen("probe:records") == 1, 30, "the warm-up task")
        before = _stats(client)
        started = time.monotonic()
        hops = 40
        for i in range(hops):
            app.send_task("probe.record", args=[str(i)], queue="io")
        polls = 0
        while client.llen("probe:records") < hops + 1:
            polls += 1
            time.sleep(0.05)
        time.sleep(1.5)  # the acknowledgements of the last tasks
        after = _stats(client)
        seconds = time.monotonic() - started
    finally:
        worker.stop()
    used = _delta(before, after)
    # Kombu's upkeep of the remote-control queue's binding table (a refresh an hour, a sweep a
    # minute: MULTI, EVALSHA, SADD, ZADD, TIME, ...; about a dozen commands) may fall in the
    # window; acknowledgement bookkeeping would be 8 commands per hop, 320 here.
    upkeep = 15
    for command in ("hset", "hdel", "zrem"):
        assert command not in used, str(sorted(used.items()))
    for command in ("multi", "exec", "zadd"):
        assert used.get(command, 0) <= 2, str(sorted(used.items()))
    assert used["lpush"] == hops
    assert used["rpush"] == hops  # the probes' own records
    # One BRPOP per message at most, and the idle poll of about one a second.
    assert used["brpop"] <= hops + seconds + 2, used
    assert "publish" not in used, used  # no worker heartbeat events
    broker = sum(v for k, v in used.items() if k not in ("rpush", "llen", "info"))
    assert broker <= 2.2 * hops + upkeep, str(sorted(used.items()))
    assert used["llen"] == polls + 1
    assert not client.exists("unacked", "unacked_index")


def test_an_idle_worker_polls_and_publishes_nothing(own_redis, client, tmp_path):
    worker = ProbeWorker(own_redis.url, tmp_path / "worker.log").start()
    try:
        time.sleep(1.0)
        before = _stats(client)
        time.sleep(5.0)
        used = _delta(before, _stats(client))
    finally:
        worker.stop()
    # Celery's heartbeat event was a PUBLISH every 2 s; the BRPOP waits 1 s at a time.
    assert "publish" not in used, used
    assert used["brpop"] <= 7, used


def test_the_prefetch_limit_still_holds(own_redis, client, tmp_path):
    worker = ProbeWorker(own_redis.url, tmp_path / "worker.log", concurrency=1).start()
    app = _app(own_redis.url)
    try:
        for tag in ("a", "b", "c"):
            app.send_task("probe.sleep", args=[tag, 1.5], queue="io")
        wait_until(lambda: records(client), 30, "the first task to start")
        time.sleep(0.5)
        # One running (prefetch 1 x concurrency 1); the other two wait in Redis.
        assert client.llen("io") == 2
        wait_until(lambda: len(records(client)) == 6, 30, "all three tasks")
        assert [r["args"][0] for r in records(client) if r["phase"] == "start"] == \
            ["a", "b", "c"]
    finally:
        worker.stop()


def test_a_warm_stop_puts_back_what_waits_for_its_countdown(own_redis, client, tmp_path):
    worker = ProbeWorker(own_redis.url, tmp_path / "worker.log").start()
    app = _app(own_redis.url)
    app.send_task("probe.record", args=["later"], queue="io", countdown=120)
    app.send_task("probe.sleep", args=["running", 2.0], queue="io")
    wait_until(lambda: records(client), 30, "the running task to start")
    assert client.llen("io") == 0  # both received: one runs, one waits for its ETA
    assert worker.stop() == 0
    ran = records(client)
    assert [(r["args"][0], r["phase"]) for r in ran] == [("running", "start"),
                                                        ("running", "end")]
    [back] = [json.loads(raw) for raw in client.lrange("io", 0, -1)]
    assert back["headers"]["task"] == "probe.record" and back["headers"]["eta"]
    assert json.loads(base64.b64decode(back["body"]))[0] == ["later"]
    assert not client.exists("unacked", "unacked_index")


def test_what_cannot_be_put_back_is_dropped_with_a_warning(own_redis, client, caplog,
                                                          monkeypatch):
    from kombu.transport.virtual import base

    connection = Connection(own_redis.url, transport="workers.broker:Transport")
    channel = connection.default_channel
    assert isinstance(channel.qos, QoS)
    with connection.Producer() as producer:
        producer.publish({"held": 1}, routing_key="io", serializer="json")
    channel.queue_declare("io")
    held = channel.basic_get("io", no_ack=False)  # held in memory, as a prefetched message
    assert held is not None and client.llen("io") == 0
    assert not client.exists("unacked", "unacked_index")
    dumped: list = []
    # What kombu does with messages it could not put back: a file of them (they name people).
    monkeypatch.setattr(base, "emergency_dump_state", lambda *a, **kw: dumped.append(a))
    own_redis.stop()
    try:
        with caplog.at_level("WARNING", logger="workers.broker"):
            channel.qos.restore_unacked_once()
    finally:
        own_redis.start()
    assert dumped == []
    assert "1 held broker message(s) not put back" in caplog.text
    connection.close()


def test_a_wake_up_is_what_send_task_writes(own_redis, client):
    app = _app(own_redis.url)
    key = ConversationKey(platform=Platform.LINE, bot_id="U1", chat_id="C2", user_id="U3")
    for countdown in (0.0, 2.0):
        client.delete("io")
        app.send_task("workers.tasks.process_conversation",
                      args=[key.model_dump(mode="json")], queue="io",
                      countdown=countdown or None)
        [raw] = client.lrange("io", 0, -1)
        theirs, ours = json.loads(raw), json.loads(wake_up(app, key, countdown).payload)
        ids = ("id", "root_id", "correlation_id", "delivery_tag", "eta")
        for part in ("headers", "properties"):
            assert theirs[part].keys() == ours[part].keys()
            assert {k: v for k, v in theirs[part].items() if k not in ids} == \
                {k: v for k, v in ours[part].items() if k not in ids}
            assert ours["headers"]["id"] == ours["headers"]["root_id"] == \
                ours["properties"]["correlation_id"]
        assert {k: v for k, v in theirs.items() if k not in ("headers", "properties")} == \
            {k: v for k, v in ours.items() if k not in ("headers", "properties")}
        assert bool(ours["headers"]["eta"]) == bool(countdown)


@pytest.mark.parametrize("transport", ["redis", "workers.broker:Transport"])
def test_a_collected_channel_restoring_its_messages(redis_server, transport):
    connection = Connection(redis_server.url[:-2] + "/15", transport=transport)
    channel = connection.default_channel
    channel._disconnect_pools()  # what closing the channel does first
    connection.transport.client = None  # what Connection.collect() does to the transport
    expected = AttributeError if transport == "redis" else redis.ConnectionError
    with pytest.raises(expected):
        channel._connparams()
    assert (expected in connection.transport.connection_errors) == (transport != "redis")
    connection.transport.client = connection
    connection.close()


def test_the_app_uses_it(redis_server):
    from bot.composition import Services

    with Services(Settings(_env_file=None, redis_url=redis_server.url)).celery.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        assert isinstance(connection.default_channel.qos, QoS)
        assert not connection.default_channel.ack_emulation
