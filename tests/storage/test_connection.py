"""Where Redis is (storage/connection.py): REDIS_URL, or REDIS_SENTINELS with the master's name,
the two passwords and REDIS_DB, turned into every client and the Celery broker. Unit: nothing
here connects (clients connect lazily)."""

from __future__ import annotations

import pytest
import redis.asyncio.sentinel
import redis.sentinel
from pydantic import ValidationError

from bot.composition import Services
from bot.kernel.settings import Settings, parse_sentinels
from storage.connection import (
    RedisTarget,
    async_client,
    broker_url_and_options,
    master_address,
    sync_client,
)
from workers.celery_app import create_celery

SENTINEL_ENV = {"redis_sentinels": "10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381",
                "redis_sentinel_master": "prod-1", "redis_password": "p@ss/w:rd",
                "redis_sentinel_password": "sentinel-secret", "redis_db": 3}


def sentinel_settings(**over: object) -> Settings:
    return Settings(_env_file=None, **{**SENTINEL_ENV, **over})  # type: ignore[arg-type]


def test_sentinels_parse_with_default_port_and_ipv6() -> None:
    assert parse_sentinels("a:1,b, [::1]:26381") == (("a", 1), ("b", 26379), ("::1", 26381))
    assert parse_sentinels("") == ()


@pytest.mark.parametrize("bad", ["a:1,,b:2", "a:0", "a:99999", "a:port", ":26379"])
def test_a_bad_sentinel_list_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValidationError, match="REDIS_SENTINELS"):
        sentinel_settings(redis_sentinels=bad)


def test_the_master_name_is_checked() -> None:
    with pytest.raises(ValidationError):
        sentinel_settings(redis_sentinel_master="bad name")


def test_wait_must_fit_inside_the_socket_timeout() -> None:
    """WAIT longer than the socket timeout would read as a dead connection (and be retried)."""
    with pytest.raises(ValidationError, match="REDIS_WAIT_TIMEOUT_MS"):
        Settings(_env_file=None, redis_socket_timeout_seconds=2,  # type: ignore[call-arg]
                 redis_wait_timeout_ms=2000)


def test_target_from_settings_carries_no_secret_in_its_repr() -> None:
    target = RedisTarget.from_settings(sentinel_settings())
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381))
    assert (target.master, target.password, target.sentinel_password, target.db) == (
        "prod-1", "p@ss/w:rd", "sentinel-secret", 3)
    assert "p@ss" not in repr(target) and "sentinel-secret" not in repr(target)
    assert "p@ss" not in sentinel_settings().redis_display
    assert sentinel_settings().redis_display == (
        "sentinel://10.0.0.1:26379,10.0.0.2:26380,[::1]:26381 master=prod-1 db=3")


def test_url_mode_is_unchanged() -> None:
    settings = Settings(_env_file=None, redis_url="redis://h:1/2")  # type: ignore[call-arg]
    target = RedisTarget.from_settings(settings)
    assert not target.uses_sentinel
    client = sync_client(target)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h", 1, 2)
    assert kwargs["socket_timeout"] == settings.redis_socket_timeout_seconds
    assert master_address(client) is None
    assert broker_url_and_options(target) == ("redis://h:1/2", {}, "workers.broker:Transport")


def test_a_sentinel_client_finds_the_master_by_name_with_both_passwords() -> None:
    target = RedisTarget.from_settings(sentinel_settings())
    client = sync_client(target, retries=7)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "prod-1" and pool.is_master
    kwargs = pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"]) == ("p@ss/w:rd", 3)
    assert kwargs["socket_timeout"] == target.socket_timeout
    assert kwargs["retry"].get_retries() == 7
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinels] == list(target.sentinels)
    for one in sentinels:  # the sentinels' own password, and timeouts on their sockets
        one_kwargs = one.connection_pool.connection_kwargs
        assert one_kwargs["password"] == "sentinel-secret"
        assert one_kwargs["socket_timeout"] == target.connect_timeout
    assert master_address(client) is None  # not connected yet


def test_the_asyncio_client_is_built_the_same_way() -> None:
    target = RedisTarget.from_settings(sentinel_settings())
    client = async_client(target, retries=3, socket_timeout=42.0)
    pool = client.connection_pool
    assert isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool)
    assert pool.service_name == "prod-1"
    assert pool.connection_kwargs["socket_timeout"] == 42.0
    assert pool.connection_kwargs["password"] == "p@ss/w:rd"


def test_the_broker_uses_kombus_sentinel_urls_and_our_channel() -> None:
    target = RedisTarget.from_settings(sentinel_settings())
    url, options, transport = broker_url_and_options(target)
    assert url == ("sentinel://:p%40ss%2Fw%3Ard@10.0.0.1:26379/3;"
                   "sentinel://:p%40ss%2Fw%3Ard@10.0.0.2:26380/3;"
                   "sentinel://:p%40ss%2Fw%3Ard@[::1]:26381/3")
    assert options["master_name"] == "prod-1"
    assert options["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert transport == "workers.broker:SentinelTransport"

    app = create_celery(sentinel_settings())
    assert app.conf.broker_transport == "workers.broker:SentinelTransport"
    assert app.conf.broker_transport_options["master_name"] == "prod-1"
    # The project's own options stay (timeouts on every broker socket).
    assert app.conf.broker_transport_options["socket_timeout"] == 15.0
    connection = app.connection_for_write()
    assert connection.transport.Channel.__name__ == "SentinelChannel"
    assert connection.transport.Channel.ack_emulation is False  # our no-bookkeeping channel
    assert len(connection.alt) == 3
    assert connection.password == "p@ss/w:rd" and connection.virtual_host == "3"


def test_every_client_of_the_composition_root_goes_through_the_sentinels() -> None:
    services = Services(sentinel_settings())
    try:
        assert isinstance(services.redis.connection_pool, redis.sentinel.SentinelConnectionPool)
        # the stores share it
        assert services.conversations._redis is services.redis  # noqa: SLF001
    finally:
        services.close()
