"""Fixtures of the admin console's tests: the conversation log on real SQLite and PostgreSQL
(tests/helpers/conversation_log.py), and the console's Redis database."""

from collections.abc import Iterator

import pytest
import redis

from tests.helpers.conversation_log import conversation_log, postgres_log, postgres_url

__all__ = ["conversation_log", "postgres_log", "postgres_url", "redis_url"]


@pytest.fixture()
def redis_url(redis_server) -> Iterator[str]:
    """The URL of a database of the suite's Redis, emptied after the test."""
    url = f"{redis_server.url[:-2]}/12"
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
