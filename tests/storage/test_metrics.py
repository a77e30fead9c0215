"""Metrics recorded in process memory, flushed into Redis (a real server), read back in
Prometheus' text format."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli.embedded_redis import EmbeddedRedis
from storage.metrics import LATENCY_BUCKETS, RedisCollector, RedisMetrics
from tests.helpers.waiting import wait_until


def samples(client) -> dict[tuple, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_histograms_and_queue_depth(client):
    metrics = RedisMetrics(client)
    metrics.inc("webhooks", platform="telegram", status="200")
    metrics.inc("webhooks", platform="telegram", status="200")
    metrics.inc("webhooks", platform="line", status="400")
    for value in (0.3, 1.5, 40):
        metrics.observe("first_reply_seconds", value, platform="line")
    client.rpush("inference", "a", "b")
    metrics.close()  # flushed: the collector reads what every process flushed
    got = samples(client)
    assert got[("sealion_webhooks_total", (("platform", "telegram"), ("status", "200")))] == 2
    assert got[("sealion_webhooks_total", (("platform", "line"), ("status", "400")))] == 1
    bucket = "sealion_first_reply_seconds_bucket"
    assert got[(bucket, (("le", "0.5"), ("platform", "line")))] == 1
    assert got[(bucket, (("le", "2"), ("platform", "line")))] == 2
    assert got[(bucket, (("le", "+Inf"), ("platform", "line")))] == 3
    assert got[("sealion_first_reply_seconds_count", (("platform", "line"),))] == 3
    assert got[("sealion_first_reply_seconds_sum", (("platform", "line"),))] == pytest.approx(41.8)
    assert got[("sealion_queue_depth", (("queue", "inference"),))] == 2


@pytest.mark.integration
def test_recording_never_raises_when_redis_is_away():
    dead = RedisMetrics(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    dead.inc("webhooks", platform="telegram", status="200")
    dead.observe("generation_seconds", 1.0)
    assert dead.flush() is False and dead.pending() > 0
    dead.close()


# --- in-process recording, flushed -------------------------------------------------------------

def _hash(client, kind: str, name: str) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in client.hgetall(f"sealion:metrics:{kind}:{name}").items()}


@pytest.fixture()
def own_server(tmp_path) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test's own: its INFO commandstats counts this test only."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop()


def test_recording_sends_nothing_until_a_flush_which_sends_each_field_once(own_server):
    client = redis.Redis.from_url(own_server.url)
    metrics = RedisMetrics(client, flush_seconds=3600)
    for _ in range(300):
        metrics.inc("webhooks", platform="line", status="200")
        metrics.observe("first_reply_seconds", 0.4, platform="line")
    metrics.inc("generated_tokens", 14.5)
    assert not client.keys("sealion:metrics:*")
    # 300 observations wait as one field per bucket they fit under, plus sum and count.
    fits = sum(1 for bound in LATENCY_BUCKETS if 0.4 <= bound)
    assert metrics.pending() == 1 + (fits + 2) + 1
    before = client.info("commandstats")
    assert metrics.flush() is True
    after = client.info("commandstats")
    calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
    # One MULTI/EXEC of one command per field (this test's own INFO aside).
    assert calls["cmdstat_multi"] == calls["cmdstat_exec"] == 1
    assert calls["cmdstat_hincrby"] + calls["cmdstat_hincrbyfloat"] == fits + 4
    assert _hash(client, "counter", "webhooks") == {'{"platform":"line","status":"200"}': 300}
    assert _hash(client, "counter", "generated_tokens") == {"{}": 14.5}
    hist = _hash(client, "hist", "first_reply_seconds")
    assert hist['{"platform":"line"}|0.5'] == hist['{"platform":"line"}|count'] == 300
    assert '{"platform":"line"}|0.25' not in hist
    assert hist['{"platform":"line"}|sum'] == pytest.approx(120.0)
    assert metrics.pending() == 0 and metrics.flush() is True  # nothing left to send
    metrics.close()


def test_a_thread_flushes_on_its_own_and_close_stops_it(client):
    metrics = RedisMetrics(client, flush_seconds=0.2)
    metrics.inc("reconciled")
    thread = metrics._thread
    assert thread is not None and thread.daemon
    wait_until(lambda: client.hget("sealion:metrics:counter:reconciled", "{}"), 5,
               "the periodic flush")
    metrics.inc("reconciled")
    metrics.close()
    assert not thread.is_alive()
    assert _hash(client, "counter", "reconciled") == {"{}": 2}  # close flushed the second


def test_readers_see_this_process_values_at_once(client):
    metrics = RedisMetrics(client, flush_seconds=3600)
    metrics.inc("duplicates", platform="whatsapp")
    assert metrics.counter("duplicates") == {'{"platform":"whatsapp"}': 1.0}
    metrics.observe("guard_seconds", 0.02, side="input")
    assert metrics.histogram("guard_seconds")['{"side":"input"}']["count"] == 1
    metrics.close()


def test_threads_recording_while_it_flushes_lose_nothing(client):
    metrics = RedisMetrics(client, flush_seconds=0.01)

    def record() -> None:
        for _ in range(2000):
            metrics.inc("webhooks", platform="telegram", status="200")
            metrics.observe("batch_size", 3)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.close()
    assert _hash(client, "counter", "webhooks") == {'{"platform":"telegram","status":"200"}':
                                                    16000}
    hist = _hash(client, "hist", "batch_size")
    assert hist["{}|4"] == hist["{}|count"] == 16000 and "{}|2" not in hist
    assert hist["{}|sum"] == 48000


def test_a_flush_while_redis_is_away_keeps_the_values_without_growing(own_server):
    server = own_server
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=1)
    metrics = RedisMetrics(client, flush_seconds=3600)
    try:
        metrics.inc("send_errors", platform="line", code="429")
        metrics.observe("generation_seconds", 2.5)
        fields = metrics.pending()
        server.stop()
        assert metrics.flush() is False
        for _ in range(1000):  # more of the same while Redis is away: no new fields
            metrics.inc("send_errors", platform="line", code="429")
            metrics.observe("generation_seconds", 2.5)
        assert metrics.flush() is False
        assert metrics.pending() == fields
        server.start()
        assert metrics.flush() is True
        assert _hash(client, "counter", "send_errors") == {
            '{"code":"429","platform":"line"}': 1001}
        hist = _hash(client, "hist", "generation_seconds")
        assert hist["{}|3"] == hist["{}|count"] == 1001 and "{}|2" not in hist
    finally:
        metrics.close()
        client.close()


def test_new_fields_beyond_the_cap_are_dropped_and_counted(client, monkeypatch):
    import storage.metrics

    monkeypatch.setattr(storage.metrics, "MAX_PENDING_FIELDS", 3)
    metrics = RedisMetrics(client, flush_seconds=3600)
    for code in ("400", "401", "403", "404", "409"):
        metrics.inc("send_errors", platform="telegram", code=code)
    metrics.inc("send_errors", platform="telegram", code="400")  # an existing field still adds
    assert metrics.pending() == 3 and metrics.dropped == 2
    metrics.close()
    assert _hash(client, "counter", "send_errors") == {
        '{"code":"400","platform":"telegram"}': 2, '{"code":"401","platform":"telegram"}': 1,
        '{"code":"403","platform":"telegram"}': 1}


def test_a_process_that_exits_without_closing_flushes_and_is_not_held(redis_server):
    url = redis_server.url[:-2] + "/14"
    code = ("import redis, sys; from storage.metrics import RedisMetrics; "
            f"m = RedisMetrics(redis.Redis.from_url({url!r}), flush_seconds=3600); "
            "m.inc('turns_resumed', 3); sys.exit(0)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)
    assert time.monotonic() - started < 15  # the flushing thread holds nothing up
    client = redis.Redis.from_url(url)
    try:
        assert _hash(client, "counter", "turns_resumed") == {"{}": 3}
    finally:
        client.flushdb()
        client.close()


def test_a_forked_child_does_not_flush_its_parents_values(real_client):
    client = real_client  # the child is another process: a real Redis
    metrics = RedisMetrics(client, flush_seconds=3600)
    metrics.inc("regenerations", 5)
    pid = os.fork()
    if pid == 0:  # the child: its own record only
        try:
            metrics.inc("regenerations", 1)
            metrics.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert _hash(client, "counter", "regenerations") == {"{}": 1}
    metrics.close()
    assert _hash(client, "counter", "regenerations") == {"{}": 6}
