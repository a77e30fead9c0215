"""The Celery app: Redis broker, two queues, a message is only a wake-up.

Queue "io" carries platform work (media, sending, typing); queue "inference" carries generation
only, so a slow platform never holds the GPU. A task only says "look at this conversation": the
state lives in Redis (storage/conversations.py), and turn leases with a reconciler in every
worker (workers/leases.py) recover a dead worker's turns. So the broker is not a second ledger:

- **No acknowledgement bookkeeping in Redis** (workers/broker.py). Receiving and acknowledging
  a message write nothing; a hop costs its LPUSH and its BRPOP. A message held by a worker
  that dies is lost with it, and that is safe: its conversation is still pending or inflight
  in Redis with no live lease, so a reconciler restarts it, LEASE_SECONDS (30 s) after the last
  renewal for a turn under way, and within RECONCILE_GRACE_SECONDS + RECONCILE_INTERVAL_SECONDS
  (10 + 10 s) once nothing vouches for it (measured by benchmarks/recovery.py, proven with
  SIGKILLed workers and a killed redis-server by tests/faults/). A publish that fails (Redis
  away) leaves the same state and the same recovery. Every task is idempotent by turn id, so
  a message run twice (put back at a stop while its task still ran) changes nothing.
- **`task_acks_late`** stays: acknowledging costs nothing now, and acking after the task
  keeps a running task counted against the prefetch limit (`worker_prefetch_multiplier` 1 x
  concurrency), so a busy worker does not take messages an idle one could run.
- **`task_reject_on_worker_lost`** is off: it only requeues the task of a prefork child that
  died, which the reconciler covers as it covers a dead worker, without a redelivery loop
  for a task that kills its process.
- **No visibility timeout**: nothing waits in an unacked hash to be restored, so
  CELERY_VISIBILITY_TIMEOUT and CELERY_RESTORE_INTERVAL no longer reach the broker. At a
  warm stop a worker puts back the messages it holds for their countdown (workers/broker.py).
- **No idle chatter**: workers run `--without-heartbeat --without-gossip --without-mingle`
  (bot/cli/main.py `_worker_argv`) and send no task events: the celeryev heartbeat was a
  PUBLISH every 2 s per worker that nothing here reads (liveness is the worker registry of
  `workers.lifecycle`, readiness /readyz). Remote control (the pidbox: one SUBSCRIBE, no
  polling) stays on for Flower's inspect (deploy/compose.yml, profile "flower").

`wake_up` builds the one message the accept path publishes, `process_conversation`, as a
Celery protocol-2 message in kombu's Redis envelope, for the accept script to LPUSH itself
when the conversation was idle (storage/inbox.py): the broker and the conversation state are
the same Redis (REDIS_URL), so the wake-up is part of the accept's one atomic script.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from celery.schedules import crontab
from kombu import serialization
from kombu.entity import PERSISTENT_DELIVERY_MODE
from kombu.utils.uuid import uuid

from bot.kernel.messages import ConversationKey, InboundMessage
from bot.kernel.settings import Settings
from storage.connection import RedisTarget, broker_url_and_options
from storage.inbox import WakeUp
from storage.keys import Queue
from workers.broker import redis_envelope

IO_QUEUE = Queue.IO.value
INFERENCE_QUEUE = Queue.INFERENCE.value
PROCESS_CONVERSATION = "workers.tasks.process_conversation"
RECORD_RATING = "workers.tasks.record_rating"


def create_celery(settings: Settings) -> Celery:
    """The Celery app for `settings` (built by the composition root, `bot.composition`)."""
    # REDIS_URL, or kombu's sentinel:// list with master_name (REDIS_SENTINELS): after a
    # failover the worker reconnects to the master the sentinels name (storage/connection.py).
    broker, sentinel_options, transport = broker_url_and_options(
        RedisTarget.from_settings(settings))
    app = Celery("sealion", broker=broker, include=["workers.tasks"], set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_default_queue=IO_QUEUE,
        task_routes={"workers.tasks.generate_reply": {"queue": INFERENCE_QUEUE},
                     "workers.tasks.transcribe_voice": {"queue": INFERENCE_QUEUE}},
        task_time_limit=settings.celery_task_time_limit,
        task_soft_time_limit=max(settings.celery_task_time_limit - 30,
                                 settings.celery_task_time_limit * 4 // 5),
        broker_transport_options={
            # Every broker socket has timeouts: a half-open connection is noticed, never waited
            # on forever (the socket timeout stays above the transport's 1 s BRPOP).
            "socket_connect_timeout": settings.redis_connect_timeout_seconds,
            "socket_timeout": settings.redis_socket_timeout_seconds,
            "health_check_interval": 10,
            **sentinel_options,
        },
        # Kombu's Redis transport without acknowledgement bookkeeping in Redis, and with the
        # fix that keeps a Redis restart from ending the worker (workers/broker.py).
        broker_transport=transport,
        broker_connection_timeout=settings.redis_connect_timeout_seconds,
        broker_connection_retry_on_startup=True,
        # A worker never gives up on its broker: Redis restarting, or a minute of network
        # trouble, ends in a reconnect, not in an exit (a GPU worker reloads for minutes).
        broker_connection_max_retries=None,
        # A publish while the broker is away fails within about a second instead of hanging:
        # the message is already pending in Redis, and the reconciler starts it later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0,
                                   "interval_step": 0.3, "interval_max": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        beat_schedule={
            "purge-conversation-log": {
                "task": "workers.tasks.purge_conversation_log",
                "schedule": crontab(hour=3, minute=17),
                "options": {"queue": IO_QUEUE},
            },
        },
    )
    return app


def wake_up(app: Celery, key: ConversationKey, countdown: float = 0.0) -> WakeUp:
    """The `process_conversation` message for `key`, ready to LPUSH onto queue "io": Celery's
    own protocol-2 message (`app.amqp.as_task_v2`: headers, body, an ETA from `countdown`),
    serialised as the app serialises tasks, in kombu's Redis envelope (`redis_envelope`).
    Pure: no I/O, cheap enough for an event loop. A real worker runs it
    (tests/workers/test_broker.py)."""
    return task_message(app, PROCESS_CONVERSATION, [key.model_dump(mode="json")], countdown)


def rating_message(app: Celery, message: InboundMessage) -> WakeUp:
    """The `record_rating` message of a RATING message, ready to LPUSH onto queue "io"."""
    return task_message(app, RECORD_RATING, [message.model_dump(mode="json")])


def task_message(app: Celery, name: str, args: list[Any], countdown: float = 0.0) -> WakeUp:
    """A task's broker message for queue "io", built as `wake_up` builds its own (pure)."""
    task_id = uuid()
    message = app.amqp.as_task_v2(task_id, name, args=args, kwargs={},
                                  countdown=countdown or None, reply_to=app.thread_oid,
                                  ignore_result=None)  # as `send_task` leaves them
    content_type, content_encoding, body = serialization.dumps(
        message.body, serializer=app.conf.task_serializer)
    properties = {**message.properties, "delivery_mode": PERSISTENT_DELIVERY_MODE}
    return WakeUp(queue=IO_QUEUE, payload=redis_envelope(
        body, content_type=content_type, content_encoding=content_encoding,
        headers=message.headers, properties=properties, queue=IO_QUEUE))


def enqueue_conversation(client: redis.Redis, celery: Celery, key: ConversationKey,
                         countdown: float = 0.0) -> None:
    """Ask an I/O worker to start the conversation's next turn now (the reconciler's restart):
    the accept path's message, one LPUSH. Raises `redis.RedisError` when Redis is away."""
    message = wake_up(celery, key, countdown)
    client.lpush(message.queue, message.payload)
