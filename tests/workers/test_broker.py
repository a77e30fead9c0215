"""The broker transport's fix: a channel whose connection celery 5.7 already collected fails
with a connection error (which celery tolerates), not AttributeError (which ends the worker).
The whole scenario, a Redis restart with tasks in flight, is tests/faults/test_recovery.py."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection

from workers.broker import Transport


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


def test_the_app_uses_it():
    from workers.celery_app import create_celery

    with create_celery().connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
