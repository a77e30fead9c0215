"""`sealion_queue_depth{queue=...}` on the API's /metrics: one sample per Celery queue
(storage/keys.py Queue), the length of the Redis list of that name, the same list KEDA's
ScaledObjects read (deploy/kubernetes/). Unit tier: the app's Redis is an in-memory twin."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.composition import Services
from bot.kernel.settings import Settings
from bot.web.app import create_app
from storage.keys import Queue
from tests.helpers.twins import twin_redis


def depths(api: TestClient) -> dict[str, float]:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    [family] = [f for f in text_string_to_metric_families(response.text)
                if f.name == "sealion_queue_depth"]
    assert family.type == "gauge"
    return {sample.labels["queue"]: sample.value for sample in family.samples}


def test_every_queue_is_exported_with_its_length(tmp_path):
    services = Services(Settings(_env_file=None, environment="test",
                                 data_dir=str(tmp_path / "data")))
    client = services.redis = twin_redis()  # the app's only Redis: nothing reaches a socket
    api = TestClient(create_app(services=services), base_url="http://127.0.0.1",
                     client=("127.0.0.1", 50000))
    # Nothing waiting is still a sample (0), so an autoscaler's or an alert's query has a value.
    assert depths(api) == {queue.value: 0.0 for queue in Queue}
    client.rpush(Queue.IO.value, "a", "b", "c")
    client.rpush(Queue.INFERENCE.value, "d")
    assert depths(api) == {Queue.IO.value: 3.0, Queue.INFERENCE.value: 1.0}
    client.lpop(Queue.IO.value)
    assert depths(api)[Queue.IO.value] == 2.0
