"""The Redis broker transport: a message is a wake-up, so the broker keeps no books in Redis.

Kombu's Redis transport emulates acknowledgements in Redis: every message a worker receives
is written to an `unacked` hash and an `unacked_index` sorted set (MULTI ZADD HSET EXEC), and
every ack deletes it again (MULTI ZREM HDEL EXEC); a periodic sweep (a mutex, a ZRANGE, a
script) puts back messages older than the visibility timeout. That is 8 commands per message
on top of its LPUSH and BRPOP, to guarantee what the turn state in Redis already guarantees:
pending and inflight lists, turn leases renewed by the worker that holds them, and a reconciler
in every worker that restarts a conversation whose work has no live lease
(`storage.conversations`, `workers.leases`). So here:

- `QoS` keeps kombu's in-memory accounting only (`kombu.transport.virtual.QoS`): the prefetch
  limit (`worker_prefetch_multiplier` x concurrency) still holds, since a message counts until
  it is acknowledged, but receiving and acknowledging write nothing to Redis, and
  `restore_visible` (the sweep) does nothing. A hop costs its LPUSH and its share of a BRPOP.
- What this gives up: a message received by a worker that then dies (SIGKILL, OOM, the machine)
  is gone with it. Its conversation is still pending or inflight in Redis without a live lease,
  and a reconciler restarts it (LEASE_SECONDS for the lease to lapse, then within
  RECONCILE_GRACE_SECONDS + RECONCILE_INTERVAL_SECONDS). tests/faults/ proves it with real
  processes; Celery's redelivery after the visibility timeout (an hour) was never the path.
- At a warm stop (SIGTERM) Celery finishes the running tasks and acknowledges them, then
  closes the channel: `restore_unacked` puts back the messages this worker still holds in
  memory (the ones with a countdown: an album's wake-up, a send retry, a turn waiting for its
  lease), one LPUSH each, so another worker runs them on time. If Redis cannot be reached then
  (a Redis restart closes the channel too), they are dropped with a warning instead of being
  dumped to a file (they name conversations); the reconciler starts their conversations.

The same class keeps the earlier fix: when the broker connection is lost, celery first calls
`Connection.collect()`, which detaches the transport (`transport.client = None`), and then
`Connection.close()`, whose channel restores its held messages through a new Redis pool built
from `transport.client.hostname`: `AttributeError`, which is not a connection error, so the
worker used to exit ("Unrecoverable error"). `Channel._connparams` raises a Redis
`ConnectionError` there instead, which celery and kombu treat as they should.

`redis_envelope` is what kombu's channel would LPUSH for a message: the webhook's accept script
publishes wake-ups itself (`workers.celery_app.wake_up`, `storage.inbox`).

Selected with `broker_transport = "workers.broker:Transport"` (workers.celery_app).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps
from kombu.utils.uuid import uuid

log = logging.getLogger(__name__)


class QoS(virtual.QoS):
    """Prefetch accounting in this process's memory only; nothing of it in Redis."""

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        """Put back the messages this worker still holds (at a warm stop: those waiting for
        their countdown). Redis away: drop them, the reconciler covers their conversations."""
        self._flush()
        delivered: dict[str, Any] = self._delivered  # type: ignore[assignment]
        held = list(delivered.values())
        delivered.clear()
        lost = 0
        for message in held:
            try:
                self.channel._restore(message)
            except Exception as exc:  # Redis away or the channel already collected
                lost += 1
                log.debug("held message not put back: %s", type(exc).__name__)
        if lost:
            log.warning("%d held broker message(s) not put back (Redis unreachable); the "
                        "reconciler restarts their conversations", lost)
        # Nothing for kombu to dump: what could not be put back is the reconciler's.
        return []


class Channel(kombu_redis.Channel):
    # kombu's Redis QoS (the bookkeeping) is deliberately not a base of ours.
    QoS = QoS  # type: ignore[assignment]
    #: No unacked hash or index, no visibility-timeout sweep; `_restore` re-publishes the
    #: message held in memory (kombu's virtual channel) instead of reading the hash.
    ack_emulation = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Without ack emulation kombu's __init__ picks its plain virtual QoS: ours instead
        # (the QoS object itself is made on first use, after this).
        self.QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("this broker channel's connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):  # type: ignore[misc]
    """The same channel (our QoS, no bookkeeping, the closed-connection guard) on kombu's
    Sentinel pool: it asks the sentinels for the master at every connect (REDIS_SENTINELS)."""


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def redis_envelope(body: bytes, *, content_type: str, content_encoding: str,
                   headers: dict[str, Any], properties: dict[str, Any], queue: str) -> str:
    """The JSON kombu's Redis channel LPUSHes onto `queue` for a message published to the
    default exchange with priority 0 (`virtual.Channel.prepare_message`, then
    `_inplace_augment_message`, then `redis.Channel._put`): the body in the channel's body
    encoding (base64), a fresh delivery tag, the routing in `delivery_info`. The key to push
    to is `queue` itself (priority 0 has no suffix). tests/workers/test_broker.py checks it
    field for field against what `send_task` writes, and that a real worker runs it."""
    encoded = Channel.codecs[Channel.body_encoding].encode(body)
    props = {**properties, "delivery_info": {"exchange": "", "routing_key": queue},
             "priority": 0, "body_encoding": Channel.body_encoding, "delivery_tag": uuid()}
    return str(dumps({"body": encoded, "content-encoding": content_encoding,
                      "content-type": content_type, "headers": headers, "properties": props}))
