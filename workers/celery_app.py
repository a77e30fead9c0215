"""The Celery app: Redis broker, two queues, at-least-once delivery made safe by idempotent tasks.

Queue "io" carries platform work (media, sending, typing); queue "inference" carries generation
only, so a slow platform never holds the GPU. A task only says "look at this conversation": the
state lives in Redis (storage/conversations.py), and turn leases with a reconciler in every
worker (workers/leases.py) recover a dead worker's turns within a minute. `acks_late` with
`reject_on_worker_lost` stays as a second line: a dead worker's tasks are delivered again after
`CELERY_VISIBILITY_TIMEOUT`, and find their turn already answered.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from bot.messages import ConversationKey
from bot.settings import Settings, get_settings
from storage.keys import Queue

IO_QUEUE = Queue.IO.value
INFERENCE_QUEUE = Queue.INFERENCE.value


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("sealion", broker=settings.effective_redis_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=IO_QUEUE,
        task_routes={"workers.tasks.generate_reply": {"queue": INFERENCE_QUEUE},
                     "workers.tasks.transcribe_voice": {"queue": INFERENCE_QUEUE}},
        task_time_limit=settings.celery_task_time_limit,
        task_soft_time_limit=max(settings.celery_task_time_limit - 30,
                                 settings.celery_task_time_limit * 4 // 5),
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout,
            "unacked_restore_interval": settings.celery_restore_interval,
            "unacked_restore_throttle": 1,
            # Every broker socket has timeouts: a half-open connection is noticed, never waited
            # on forever (the socket timeout stays above the transport's 1 s BRPOP).
            "socket_connect_timeout": settings.redis_connect_timeout_seconds,
            "socket_timeout": settings.redis_socket_timeout_seconds,
            "health_check_interval": 10,
        },
        # Kombu's Redis transport with one fix: a Redis restart while tasks are in flight no
        # longer ends the worker with "Unrecoverable error: AttributeError" (workers/broker.py).
        broker_transport="workers.broker:Transport",
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


def enqueue_conversation(celery: Celery, key: ConversationKey, countdown: float = 0.0) -> None:
    """Ask an I/O worker to start the conversation's next turn (the webhook's only enqueue)."""
    celery.send_task("workers.tasks.process_conversation", args=[key.model_dump(mode="json")],
                     queue=IO_QUEUE, countdown=countdown or None)


app = create_celery()
