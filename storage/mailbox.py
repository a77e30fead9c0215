"""The Redis side of the local channels (`adapters/local.py`: the terminal and the /chat page):
photos given to a channel, and each conversation's outbox, the stream of reply events that the
local client reads (keys from `KeyBuilder`: ``sealion:upload:{id}``,
``sealion:conv:{conversation}:outbox``).

Events on an outbox (all values strings):

    {"type": "message", "text": ..., "formatted": "1"|"0", "in_reply_to": message id}
    {"type": "typing"}
    {"type": "end", "in_reply_to": message id}      the reply to that message is complete
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis
import redis.asyncio

from bot.kernel.messages import ConversationKey
from storage.keys import KeyBuilder

#: Events kept per conversation outbox (older ones are trimmed).
OUTBOX_LENGTH = 500


class LocalMailbox:
    """Uploads and reply events of the local channels, in Redis (keys from `KeyBuilder`)."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int = 3600, outbox_ttl: int = 86400,
                 keys: KeyBuilder | None = None) -> None:
        self._redis = client
        self._keys = keys or KeyBuilder()
        self._upload_ttl = upload_ttl
        self._outbox_ttl = outbox_ttl

    def upload(self, data: bytes) -> str:
        upload_id = uuid.uuid4().hex
        self._redis.set(self._keys.upload(upload_id), data, ex=self._upload_ttl)
        return upload_id

    def download(self, upload_id: str) -> bytes | None:
        value = self._redis.get(self._keys.upload(upload_id))
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def post(self, key: ConversationKey, event: Mapping[str, str]) -> str:
        name = self._keys.outbox(key)
        pipe = self._redis.pipeline()
        fields: dict[Any, Any] = dict(event)
        pipe.xadd(name, fields, maxlen=OUTBOX_LENGTH, approximate=True)
        pipe.expire(name, self._outbox_ttl)
        event_id = pipe.execute()[0]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def last_id(self, key: ConversationKey) -> str:
        """The newest event's id ("0-0" when there is none): read after it for new ones."""
        newest = self._redis.xrevrange(self._keys.outbox(key), count=1)
        if not newest:
            return "0-0"
        event_id = newest[0][0]
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def read(self, key: ConversationKey, after: str = "0-0", *, block_ms: int | None = None,
             count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Events after `after`, oldest first; waits up to `block_ms` for one when given."""
        found: Any = self._redis.xread({self._keys.outbox(key): after}, count=count,
                                       block=block_ms)
        return _events(found)

    def clear(self, key: ConversationKey) -> None:
        self._redis.delete(self._keys.outbox(key))

    def close(self) -> None:
        self._redis.close()


class OutboxReader:
    """`LocalMailbox.read` for an event loop: waits for reply events with redis.asyncio, so a
    waiting reader holds no thread. Each read has a connection of its own (closed after it),
    so readers on different event loops never share one; callers bound how many wait."""

    def __init__(self, connect: Callable[[], redis.asyncio.Redis], *,
                 keys: KeyBuilder | None = None) -> None:
        #: A new single-connection client on the running loop, its socket timeout above the
        #: longest wait (the composition root's: REDIS_URL or the sentinels' master).
        self._connect = connect
        self._keys = keys or KeyBuilder()

    async def read(self, key: ConversationKey, after: str = "0-0", *,
                   block_ms: int | None = None,
                   count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Events after `after`, oldest first; waits up to `block_ms` for one when given.
        Raises `redis.RedisError` when Redis is away."""
        client = self._connect()
        try:
            found: Any = await client.xread({self._keys.outbox(key): after}, count=count,
                                            block=block_ms)
        finally:
            await client.aclose()
        return _events(found)


def _events(found: Any) -> list[tuple[str, dict[str, str]]]:
    """XREAD's answer as (event id, fields) pairs, all strings."""
    out: list[tuple[str, dict[str, str]]] = []
    for _stream, entries in found or []:
        for event_id, fields in entries:
            out.append((_text(event_id), {_text(k): _text(v) for k, v in fields.items()}))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
