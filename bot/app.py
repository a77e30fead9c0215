"""The HTTP app: webhooks, health and readiness. It never loads a model."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator

import redis
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adapters.base import BaseAdapter, adapter_class
from bot.admin import mount_admin
from bot.limits import BodyLimit
from bot.messages import Platform
from bot.settings import Settings, get_settings, is_loopback
from bot.webchat import mount_webchat
from bot.webhooks import router as webhooks_router
from storage.conversations import Inbox, WorkerRegistry
from storage.keys import KeyBuilder
from storage.metrics import RedisCollector, RedisMetrics
from storage.model_status import ModelStatusBoard
from workers.celery_app import create_celery

log = logging.getLogger(__name__)


class _RedisValue:
    """An adapter's `StartupCache`: one Redis string, read and written off the event loop."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self._redis, self._name = client, name

    async def get(self) -> str | None:
        value = await run_in_threadpool(self._redis.get, self._name)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, value: str) -> None:
        await run_in_threadpool(self._redis.set, self._name, value)


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """/metrics is not public: the bearer METRICS_TOKEN, or, when none is set, a loopback
    client whose request came through no proxy (a proxy adds X-Forwarded-For)."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    return bool(request.client and is_loopback(request.client.host)) and not proxied


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = KeyBuilder()
        background = [
            asyncio.create_task(adapter.on_startup(_RedisValue(
                app.state.redis, keys.bot_username(platform, adapter.bot_id))))
            for platform, adapter in app.state.adapters.items()]
        yield
        for task in background:
            task.cancel()
        for adapter in app.state.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        admin = getattr(app.state, "admin", None)
        if admin is not None:
            admin.log.close()
        app.state.redis.close()

    app = FastAPI(title="sealion-bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.redis = redis.Redis.from_url(settings.effective_redis_url,
                                           socket_timeout=5, socket_connect_timeout=2)
    app.state.celery = create_celery(settings)
    app.state.metrics = RedisMetrics(app.state.redis)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(app.state.redis))
    app.state.inbox = Inbox(app.state.redis, dedupe_ttl=settings.dedupe_ttl_seconds,
                            pending_ttl=settings.turn_timeout_seconds * 4,
                            max_pending=settings.max_pending_messages)
    adapters: dict[Platform, BaseAdapter] = {}
    for platform in Platform:
        try:
            cls = adapter_class(platform)
        except KeyError:
            continue
        if cls.enabled(settings) and not platform.local:  # local chats have no webhook
            adapters[platform] = cls(settings)
    app.state.adapters = adapters
    app.include_router(webhooks_router)
    mount_admin(app, settings)  # only when ADMIN_PASSWORD is set
    mount_webchat(app, settings)  # only when WEB_CHAT is true
    # Outermost: a body over its limit is refused before anything reads it.
    app.add_middleware(BodyLimit, webhook_bytes=settings.max_webhook_body_bytes,
                       other_bytes=settings.max_form_body_bytes,
                       prefixes={"/chat/api/": settings.max_download_bytes + 64 * 1024})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Redis reachable and at least one worker alive; 503 otherwise."""
        checks: dict[str, object] = {}
        try:
            await run_in_threadpool(request.app.state.redis.ping)
            checks["redis"] = "ok"
            workers = await run_in_threadpool(WorkerRegistry(request.app.state.redis).alive)
            checks["workers"] = len(workers)
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
            checks["workers"] = 0
        checks["platforms"] = sorted(p.value for p in request.app.state.adapters)
        ready = checks["redis"] == "ok" and bool(checks["workers"])
        if ready:
            # Workers alive but none can answer: the model failed to load (bot/startup.py).
            try:
                reports = await run_in_threadpool(
                    ModelStatusBoard(request.app.state.redis).of, workers)
            except redis.RedisError:
                reports = {}
            states = {str(r.get("state")) for r in reports.values()}
            if reports:
                checks["model"] = sorted(states)
            if states == {"failed"}:
                ready = False
                checks["reason"] = next(iter(reports.values())).get("reason", "")
        return JSONResponse({"status": "ready" if ready else "not ready", **checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of the whole service (every process records into Redis); only
        with METRICS_TOKEN, or, without one, to a client on this machine and no proxy."""
        if not metrics_allowed(request, settings):
            return JSONResponse({"detail": "metrics need Authorization: Bearer METRICS_TOKEN"},
                                status_code=403)
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
