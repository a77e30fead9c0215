"""The Redis broker transport, hardened so that a Redis restart never ends a worker.

The cause (celery 5.7 with kombu 5.7 and redis-py 8): when the broker connection is lost, the
consumer first calls `Connection.collect()`, which detaches the transport from its connection
(`transport.client = None`), and then `Connection.close()`. Closing the consumer's channel
restores its unacknowledged messages (every acks_late task in flight), which needs a new Redis
pool, whose parameters kombu reads from `transport.client.hostname`: `AttributeError:
'NoneType' object has no attribute 'hostname'`. That is not one of the connection errors celery
tolerates there, so the worker exits with "Unrecoverable error". Late acknowledgements on such a
channel fail the same way.

`Channel._connparams` here raises a Redis `ConnectionError` instead: a connection error, which
celery and kombu treat as they should (ignored while closing, logged for an ack). The
unacknowledged messages stay in Redis's unacked hash, restored after the visibility timeout,
and the turns they belonged to are restarted by the reconciler long before that.

Selected with `broker_transport = "workers.broker:Transport"` (workers.celery_app).
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("this broker channel's connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
