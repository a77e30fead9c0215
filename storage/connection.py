"""Where Redis is, and the one way every client of it is built.

`RedisTarget.from_settings` reads REDIS_URL, or with REDIS_SENTINELS set the sentinels, the
master's name, the passwords and REDIS_DB. The composition root (`bot.composition.Services`)
builds every blocking and asyncio client through `sync_client` / `async_client`, and the
Celery app takes its broker from `broker_url_and_options`: nothing else builds a client.

With Sentinel, a client asks the sentinels for the master at every (re)connect, so after a
failover each process finds the new master by itself. A command that meets a dead master
(connection refused or reset), a master the sentinels no longer name (`MasterNotFoundError`)
or a demoted one (`ReadOnlyError`, which redis-py's Sentinel pool turns into a connection
error) is retried under `retry_policy`: long enough to span a failover (about 2-3 s with
`down-after-milliseconds 1000`) for the workers, short for the API, whose webhook answers
503 and lets the platform retry rather than hold the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from bot.kernel.settings import Settings

#: Retries after a connection error: 20 x up to 0.5 s spans a failover (workers); the API's
#: webhook clients take `API_RETRIES` and answer 503 instead of waiting.
FAILOVER_RETRIES = 20
API_RETRIES = 3


def retry_policy(retries: int = FAILOVER_RETRIES) -> Retry:
    """Capped jittered backoff (50 ms doubling up to 0.5 s) for `retries` attempts."""
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=retries)


@dataclass(frozen=True)
class RedisTarget:
    """REDIS_URL, or the sentinels and what the data nodes need (no secret in its repr)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = "mymaster"
    password: str | None = None
    sentinel_password: str | None = None
    db: int = 0
    connect_timeout: float = 5.0
    socket_timeout: float = 15.0

    def __repr__(self) -> str:
        where = f"sentinels={self.sentinels} master={self.master}" if self.sentinels else "url"
        return f"RedisTarget({where} db={self.db})"

    @classmethod
    def from_settings(cls, s: Settings) -> RedisTarget:
        return cls(url=s.effective_redis_url, sentinels=s.sentinel_nodes,
                   master=s.redis_sentinel_master,
                   password=s.redis_password.get_secret_value() if s.redis_password else None,
                   sentinel_password=(s.redis_sentinel_password.get_secret_value()
                                      if s.redis_sentinel_password else None),
                   db=s.redis_db, connect_timeout=s.redis_connect_timeout_seconds,
                   socket_timeout=s.redis_socket_timeout_seconds)

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def sentinel_kwargs(self) -> dict[str, Any]:
        """The sentinels' own connections: their password, and timeouts (redis-py gives them
        none once `sentinel_kwargs` is passed)."""
        kwargs: dict[str, Any] = {"socket_timeout": self.connect_timeout,
                                  "socket_connect_timeout": self.connect_timeout}
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs

    def node_kwargs(self, retries: int, **over: Any) -> dict[str, Any]:
        """The data nodes' connections (through the sentinels)."""
        kwargs: dict[str, Any] = {"db": self.db, "socket_timeout": self.socket_timeout,
                                  "socket_connect_timeout": self.connect_timeout,
                                  "health_check_interval": 30,
                                  "retry": retry_policy(retries)}
        if self.password:
            kwargs["password"] = self.password
        kwargs.update(over)
        return kwargs


def sync_sentinel(target: RedisTarget) -> redis.sentinel.Sentinel:
    """The sentinels for blocking clients: one per process (holds a small client per sentinel)."""
    return redis.sentinel.Sentinel(list(target.sentinels),
                                   sentinel_kwargs=target.sentinel_kwargs())


def async_sentinel(target: RedisTarget) -> redis.asyncio.sentinel.Sentinel:
    """The sentinels for one event loop's clients."""
    return redis.asyncio.sentinel.Sentinel(list(target.sentinels),
                                           sentinel_kwargs=target.sentinel_kwargs())


def sync_client(target: RedisTarget, *, sentinel: redis.sentinel.Sentinel | None = None,
                retries: int = FAILOVER_RETRIES, **over: Any) -> redis.Redis:
    """A blocking client (a connection pool) on the master: REDIS_URL's server, or the one
    the sentinels name now. `over` replaces connection options (e.g. socket_timeout)."""
    if not target.uses_sentinel:
        options: dict[str, Any] = {"socket_timeout": target.socket_timeout,
                                   "socket_connect_timeout": target.connect_timeout,
                                   "health_check_interval": 30, **over}
        return redis.Redis.from_url(target.url, **options)
    via = sentinel or sync_sentinel(target)
    return via.master_for(target.master, **target.node_kwargs(retries, **over))


def async_client(target: RedisTarget, *,
                 sentinel: redis.asyncio.sentinel.Sentinel | None = None,
                 retries: int = FAILOVER_RETRIES, **over: Any) -> redis.asyncio.Redis:
    """`sync_client` for an event loop (its connections belong to the loop they opened on)."""
    if not target.uses_sentinel:
        options: dict[str, Any] = {"socket_timeout": target.socket_timeout,
                                   "socket_connect_timeout": target.connect_timeout,
                                   "health_check_interval": 30, **over}
        return redis.asyncio.Redis.from_url(target.url, **options)
    via = sentinel or async_sentinel(target)
    client: redis.asyncio.Redis = via.master_for(target.master,
                                                 **target.node_kwargs(retries, **over))
    return client


def broker_url_and_options(target: RedisTarget) -> tuple[str, dict[str, Any], str]:
    """The Celery broker: (URL, transport options to merge, transport class). With Sentinel,
    kombu's `sentinel://` URL list (one per sentinel, the data nodes' password and db in
    each) with `master_name` and the sentinels' own options; the transport is our Sentinel
    twin of the no-bookkeeping channel (workers/broker.py)."""
    if not target.uses_sentinel:
        return target.url, {}, "workers.broker:Transport"
    auth = f":{quote(target.password, safe='')}@" if target.password else ""
    url = ";".join(f"sentinel://{auth}{f'[{h}]' if ':' in h else h}:{p}/{target.db}"
                   for h, p in target.sentinels)
    return url, {"master_name": target.master,
                 "sentinel_kwargs": target.sentinel_kwargs()}, "workers.broker:SentinelTransport"


def master_address(client: redis.Redis | redis.asyncio.Redis) -> tuple[str, int] | None:
    """The master this Sentinel client last connected to (no command sent): it changes when
    the process has seen a failover. None for a REDIS_URL client, or before any connection."""
    address = getattr(client.connection_pool, "master_address", None)
    return tuple(address) if address else None  # type: ignore[return-value]
