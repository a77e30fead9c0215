"""Webhook routes: verify, parse, accept once, enqueue, answer 200 — never wait on a model."""

from __future__ import annotations

import logging
from typing import Annotated

import redis
from celery import Celery
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from adapters.base import BaseAdapter, PayloadError, SignatureError
from bot.logs import pseudonym
from bot.messages import InboundMessage, Platform
from storage.conversations import Acceptance, Inbox
from storage.metrics import RedisMetrics
from workers.celery_app import enqueue_conversation

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _adapter(platform: Platform, request: Request) -> BaseAdapter:
    adapter = request.app.state.adapters.get(platform)
    if adapter is None:
        raise HTTPException(404, f"{platform.value} is not enabled")
    return adapter


def get_inbox(request: Request) -> Inbox:
    return request.app.state.inbox


def accept_messages(inbox: Inbox, celery: Celery, metrics: RedisMetrics,
                    messages: list[InboundMessage], album_window: float) -> int:
    """The accept path of every channel (webhooks, Telegram polling, the local chats): drop
    redeliveries, append to the pending list, enqueue the turn. Blocking: run it off the loop.
    Returns how many messages were new.

    Raises `redis.RedisError` when Redis is away: the caller answers 503 so the platform sends
    the event again, and the redelivery is accepted (nothing was recorded). A failed publish
    after the accept is not an error: the message is pending in Redis, the source of truth,
    and a worker's reconciler starts it.
    """
    accepted = 0
    for message in messages:
        platform = message.key.platform.value
        result = inbox.accept(message)
        if not result:
            # A WhatsApp message id (wamid) carries the sender's number: logged keyed-hashed.
            log.info("duplicate %s event %s dropped", platform, pseudonym(message.event_id))
            metrics.inc("duplicates", platform=platform)
            continue
        accepted += 1
        if result == Acceptance.ACCEPTED_DROPPED_OLDEST:
            log.warning("%s conversation over its backlog: the oldest waiting message dropped",
                        platform, extra={"conversation": message.key.log_id()})
            metrics.inc("pending_dropped", platform=platform)
        try:
            enqueue_conversation(celery, message.key, album_window if message.album_id else 0.0)
        except Exception as exc:  # the broker is away: the reconciler starts the turn
            log.warning("%s message accepted but not enqueued (%s); the reconciler will start it",
                        platform, type(exc).__name__)
            metrics.inc("enqueue_failures", platform=platform)
    return accepted


@router.post("/{platform}")
async def receive(platform: Platform, request: Request,
                  inbox: Annotated[Inbox, Depends(get_inbox)]) -> Response:
    """A platform's webhook: 401/403 forged, 400 malformed, 404 disabled, 503 while Redis is
    away (the platform retries), else 200."""
    metrics: RedisMetrics = request.app.state.metrics
    adapter = request.app.state.adapters.get(platform)
    if adapter is None:
        return _answer(metrics, platform, 404, f"{platform.value} is not enabled")
    body = await request.body()
    try:
        adapter.verify(request.headers, body)
    except SignatureError as exc:
        log.warning("%s webhook refused: %s", platform.value, exc)
        return _answer(metrics, platform, exc.status_code, "invalid signature")
    try:
        messages = adapter.parse(body)
    except PayloadError as exc:
        return _answer(metrics, platform, 400, str(exc))
    if messages:
        # Redis and the broker are blocking clients: keep them off the event loop.
        try:
            await run_in_threadpool(accept_messages, inbox, request.app.state.celery, metrics,
                                    messages, request.app.state.settings.album_window_seconds)
        except redis.RedisError as exc:
            # Nothing of this event is lost: the platform retries, and the retry is accepted.
            log.warning("%s webhook: Redis unavailable (%s); answering 503", platform.value,
                        type(exc).__name__)
            response = _answer(metrics, platform, 503, "temporarily unavailable")
            response.headers["Retry-After"] = "5"
            return response
    return _answer(metrics, platform, 200)


def _answer(metrics: RedisMetrics, platform: Platform, status: int,
            detail: str | None = None) -> Response:
    """The response, with the webhook counted after it has been sent."""
    task = BackgroundTask(metrics.inc, "webhooks", platform=platform.value, status=str(status))
    if detail is None:
        return Response(status_code=status, background=task)
    return JSONResponse({"detail": detail}, status_code=status, background=task)


@router.get("/{platform}")
async def verify_subscription(platform: Platform, request: Request) -> Response:
    """The platform's verification handshake (WhatsApp's hub.challenge); 403 when refused."""
    adapter = _adapter(platform, request)
    try:
        challenge = adapter.challenge(request.query_params)
    except SignatureError as exc:
        raise HTTPException(exc.status_code, "verification refused") from None
    return Response(challenge, media_type="text/plain")
