"""The accept path of every channel: a message enters its conversation exactly once.

Per message: build its wake-up (`workers.celery_app.wake_up`, pure), run the inbox's accept
script (storage/inbox.py: dedupe, pending list, active set, and the wake-up published only when
the conversation was idle), count what happened. One script, one round trip, no other Redis
command: the counters are in-process (storage/metrics.py).

`accept_messages_async` is the web app's (webhooks, the web chat), on its event loop with the
asyncio client; `accept_messages` is the same on a blocking client, which `Intake` bundles with
its inbox, app and metrics for the processes that are not the API (`sealion-bot poll`,
`sealion-bot chat`). The composition root (`bot.composition.Services`) builds both inboxes with
MAX_PENDING_MESSAGES.

A message that names its sender by several ids (WhatsApp: phone, business-scoped ids) is first
keyed by the person's canonical id (`storage.identities`: one more round trip, a single HMGET
once the person is known); an IDENTITY message only links ids and is not queued. A RATING
message (a 👍/👎) is never queued for a turn either: one script publishes its `record_rating`
task, once per event (`Inbox.accept_rating`).
"""

from __future__ import annotations

import logging

from celery import Celery

from bot.kernel.logs import pseudonym
from bot.kernel.messages import InboundMessage, MessageKind
from storage.identities import AsyncIdentityMap, IdentityMap
from storage.inbox import Acceptance, AsyncInbox, Inbox, WakeUp
from storage.metrics import RedisMetrics
from workers.celery_app import rating_message, wake_up

log = logging.getLogger(__name__)


def _wake_up(celery: Celery, message: InboundMessage, album_window: float) -> WakeUp:
    """The message's wake-up: an album's waits for the rest of the album to arrive."""
    return wake_up(celery, message.key, album_window if message.album_id else 0.0)


def _counted(result: Acceptance, message: InboundMessage, metrics: RedisMetrics) -> int:
    """Log and count one accept's result; 1 when the message was new."""
    platform = message.key.platform.value
    if not result:
        # A WhatsApp message id (wamid) carries the sender's number: logged keyed-hashed.
        log.info("duplicate %s event %s dropped", platform, pseudonym(message.event_id))
        metrics.inc("duplicates", platform=platform)
        return 0
    if result == Acceptance.ACCEPTED_DROPPED_OLDEST:
        log.warning("%s conversation over its backlog: the oldest waiting message dropped",
                    platform, extra={"conversation": message.key.log_id()})
        metrics.inc("pending_dropped", platform=platform)
    return 1


def _linked(message: InboundMessage, metrics: RedisMetrics) -> bool:
    """An IDENTITY message (already linked by the identity map): counted, never queued."""
    if message.kind is not MessageKind.IDENTITY:
        return False
    metrics.inc("identity_links", platform=message.key.platform.value)
    return True


async def accept_messages_async(inbox: AsyncInbox, celery: Celery, metrics: RedisMetrics,
                                messages: list[InboundMessage], album_window: float,
                                identities: AsyncIdentityMap | None = None) -> int:
    """The web app's accept path: drop redeliveries, append to the pending list, wake a worker
    if the conversation was idle. Returns how many messages were new.

    Raises `redis.RedisError` when Redis is away: the caller answers 503 so the platform sends
    the event again, and the redelivery is accepted (nothing of that message was recorded).
    """
    accepted = 0
    for message in messages:
        if identities is not None:
            message = await identities.resolve(message)
        if _linked(message, metrics):
            continue
        if message.kind is MessageKind.RATING:
            if not await inbox.accept_rating(message, rating_message(celery, message)):
                metrics.inc("duplicates", platform=message.key.platform.value)
            continue
        result = await inbox.accept(message, _wake_up(celery, message, album_window))
        accepted += _counted(result, message, metrics)
    return accepted


def accept_messages(inbox: Inbox, celery: Celery, metrics: RedisMetrics,
                    messages: list[InboundMessage], album_window: float,
                    identities: IdentityMap | None = None) -> int:
    """`accept_messages_async` on a blocking client (Telegram polling, the local chats)."""
    accepted = 0
    for message in messages:
        if identities is not None:
            message = identities.resolve(message)
        if _linked(message, metrics):
            continue
        if message.kind is MessageKind.RATING:
            if not inbox.accept_rating(message, rating_message(celery, message)):
                metrics.inc("duplicates", platform=message.key.platform.value)
            continue
        result = inbox.accept(message, _wake_up(celery, message, album_window))
        accepted += _counted(result, message, metrics)
    return accepted


class Intake:
    """`accept_messages` with its inbox, app and metrics bound (built by the composition
    root), for the channels that are not the web app's."""

    def __init__(self, inbox: Inbox, celery: Celery, metrics: RedisMetrics, *,
                 album_window: float) -> None:
        self.inbox, self.celery, self.metrics = inbox, celery, metrics
        self.album_window = album_window

    def accept(self, messages: list[InboundMessage]) -> int:
        """Accept each message once (blocking); raises `redis.RedisError` when Redis is
        away."""
        return accept_messages(self.inbox, self.celery, self.metrics, messages,
                               self.album_window)
