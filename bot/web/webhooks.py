"""Webhook routes: verify, parse, accept once, wake a worker, answer 200 — never wait on a model.

A webhook is served only where it is configured: a platform that is off, and Telegram while it
polls (TELEGRAM_POLLING), answer 404. A served Telegram webhook always has a secret: the
configured TELEGRAM_WEBHOOK_SECRET, else one generated once and kept in DATA_DIR
(`with_webhook_secret`), which `sealion-bot set-webhook telegram` registers. Requests a browser
sent for another site's page are refused (403) before their body is read: platforms send no
`Origin` or `Sec-Fetch-Site`.

The accept path runs on the event loop itself (`workers.intake.accept_messages_async`): per
message one Lua script on the asyncio Redis client, which also publishes the worker's wake-up,
and the counters are in-process (storage/metrics.py). No thread-pool hop, nothing blocking:
what waits in the app's thread pool (admin pages, exports) cannot delay a platform's
acknowledgement, and an acknowledgement costs about what /healthz costs plus one round trip.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from adapters.base import BaseAdapter, PayloadError, SignatureError
from bot.kernel.messages import Platform
from bot.kernel.settings import Settings
from bot.web.origins import browser_cross_site
from storage.inbox import AsyncInbox
from storage.metrics import RedisMetrics
from workers.intake import accept_messages_async

log = logging.getLogger(__name__)

#: The generated Telegram webhook secret, in DATA_DIR, when TELEGRAM_WEBHOOK_SECRET is unset.
WEBHOOK_SECRET_FILE = "telegram-webhook-secret"


async def refuse_browsers(request: Request) -> None:
    """403 for a request a browser sent on behalf of another site's page (async: FastAPI
    would run a plain function in its thread pool, a hop per request)."""
    if browser_cross_site(request):
        raise HTTPException(403, "cross-site request refused")


router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[Depends(refuse_browsers)])


def webhook_served(settings: Settings, platform: Platform) -> bool:
    """Whether POST /webhooks/{platform} may be answered: Telegram not while it polls."""
    return not (platform is Platform.TELEGRAM and settings.telegram_polling)


def with_webhook_secret(settings: Settings) -> Settings:
    """`settings` with a TELEGRAM_WEBHOOK_SECRET: the configured one, else a random one
    generated on first use and kept in DATA_DIR (mode 0600; the admin session secret's
    mechanism), so every process of this installation and `set-webhook` agree on it.
    Unchanged when Telegram is off or the secret is set. Raises `OSError` when DATA_DIR is
    not writable."""
    configured = settings.telegram_webhook_secret
    if not settings.telegram_enabled or (configured and configured.get_secret_value()):
        return settings
    from bot.kernel.datadir import stored_secret

    secret = stored_secret(Path(settings.data_dir) / WEBHOOK_SECRET_FILE).decode()
    return settings.model_copy(update={"telegram_webhook_secret": SecretStr(secret)})


def _adapter(platform: Platform, request: Request) -> BaseAdapter:
    adapter = request.app.state.adapters.get(platform)
    if adapter is None:
        raise HTTPException(404, f"{platform.value} is not enabled")
    return adapter


async def get_inbox(request: Request) -> AsyncInbox:
    """The accept script on the app's asyncio client (the composition root's; async: it is
    the running loop's, and a plain function would run in the thread pool)."""
    return request.app.state.services.inbox_async


@router.post("/{platform}")
async def receive(platform: Platform, request: Request,
                  inbox: Annotated[AsyncInbox, Depends(get_inbox)]) -> Response:
    """A platform's webhook: 401/403 forged, 400 malformed, 404 disabled, 503 while Redis is
    away (the platform retries), else 200."""
    metrics: RedisMetrics = request.app.state.metrics
    adapter = request.app.state.adapters.get(platform)
    if adapter is None or not webhook_served(request.app.state.settings, platform):
        return _answer(metrics, platform, 404, f"the {platform.value} webhook is not served")
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
        try:
            await accept_messages_async(inbox, request.app.state.celery, metrics, messages,
                                        request.app.state.settings.album_window_seconds,
                                        request.app.state.services.identities_async)
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
    """The response, the webhook counted (in memory: no I/O, no background task)."""
    metrics.inc("webhooks", platform=platform.value, status=str(status))
    if detail is None:
        return Response(status_code=status)
    return JSONResponse({"detail": detail}, status_code=status)


@router.get("/{platform}")
async def verify_subscription(platform: Platform, request: Request) -> Response:
    """The platform's verification handshake (WhatsApp's hub.challenge); 403 when refused."""
    adapter = _adapter(platform, request)
    try:
        challenge = adapter.challenge(request.query_params)
    except SignatureError as exc:
        raise HTTPException(exc.status_code, "verification refused") from None
    return Response(challenge, media_type="text/plain")
