"""Fixtures of the Redis stores' tests: `client`, the in-memory twin of Redis (unit tests).

The stores' behaviour on the real redis-server is the contract test's
(tests/storage/test_store_contract.py, which runs every store on both); tests of Redis itself
(what a script costs in commands, a server that goes away) start their own redis-server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bot.cli.embedded_redis import EmbeddedRedis
from tests.helpers.twins import twin_redis


@pytest.fixture()
def client() -> Iterator[redis.Redis]:
    """A client of a new, empty in-memory Redis."""
    c = twin_redis()
    yield c
    c.close()


@pytest.fixture()
def real_client(redis_server) -> Iterator[redis.Redis]:
    """A client of database 14 of the suite's redis-server, empty when the test starts and
    emptied when it ends: for what only Redis tells (INFO commandstats)."""
    c = redis.Redis.from_url(redis_server.url[:-2] + "/14")
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


@pytest.fixture()
def own_client(tmp_path) -> Iterator[redis.Redis]:
    """A client of a redis-server of the test's own: its INFO commandstats counts this test
    alone (the suite's server is shared by the tests running beside it, whose commands would
    count too)."""
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.stop()
