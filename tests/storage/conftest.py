"""Fixtures of the Redis stores' tests: a client of a database of the suite's own Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis


@pytest.fixture()
def client(redis_server) -> Iterator[redis.Redis]:
    """A client of database 14, empty when the test starts and emptied when it ends."""
    c = redis.Redis.from_url(redis_server.url[:-2] + "/14")
    c.flushdb()
    yield c
    c.flushdb()
    c.close()
