"""The worker containers' health check: alive when a worker of this host wrote a heartbeat
(`WorkerRegistry`, member "<hostname>:<pid>") within the last minute; workers beat every 10 s.

    python -m workers.healthcheck      exit 0 when alive, 1 when not

deploy/compose.yml and deploy/Dockerfile.worker run it, so the key it reads comes from
`storage.keys.KeyBuilder` like every other.
"""

from __future__ import annotations

import socket
import sys

import redis

from storage.conversations import WorkerRegistry

WITHIN_SECONDS = 60.0


def alive_here(client: redis.Redis, host: str | None = None,
               within: float = WITHIN_SECONDS) -> bool:
    me = (host or socket.gethostname()) + ":"
    return any(name.startswith(me) for name in WorkerRegistry(client).alive(within=within))


def main() -> int:
    from bot.settings import get_settings

    client = redis.Redis.from_url(get_settings().effective_redis_url, socket_timeout=5)
    try:
        return 0 if alive_here(client) else 1
    except redis.RedisError:
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
