"""Metrics in Redis, read back in Prometheus' text format."""

from __future__ import annotations

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from storage.metrics import RedisCollector, RedisMetrics


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


def test_recording_never_raises_when_redis_is_away():
    dead = RedisMetrics(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    dead.inc("webhooks", platform="telegram", status="200")
    dead.observe("generation_seconds", 1.0)
