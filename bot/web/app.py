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

from bot.admin import mount_admin
from bot.composition import Services
from bot.kernel.logs import RedactSecrets
from bot.kernel.messages import Platform
from bot.kernel.prompt import PURPOSE_DOCS, purpose_warning
from bot.kernel.settings import Settings, get_settings
from bot.web.limits import BodyLimit
from bot.web.origins import from_this_machine
from bot.web.webchat import mount_webchat
from bot.web.webhooks import router as webhooks_router
from bot.web.webhooks import webhook_served, with_webhook_secret
from storage.metrics import RedisCollector

log = logging.getLogger(__name__)


class _RedisValue:
    """An adapter's `StartupCache`: one Redis string, through the app's asyncio client."""

    def __init__(self, client: redis.asyncio.Redis, name: str) -> None:
        self._redis, self._name = client, name

    async def get(self) -> str | None:
        value = await self._redis.get(self._name)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, value: str) -> None:
        await self._redis.set(self._name, value)


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """/metrics is not public: the bearer METRICS_TOKEN, or, when none is set, a client on this
    machine that asked for a loopback Host through no proxy (`bot.web.origins`)."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return from_this_machine(request)


def create_app(settings: Settings | None = None, *, services: Services | None = None
               ) -> FastAPI:
    """The app for `settings` (read from the environment when not given), its clients and
    stores from `services` (built from the settings when not given: the composition root)."""
    settings = settings or (services.settings if services is not None else get_settings())
    if webhook_served(settings, Platform.TELEGRAM):
        # A served Telegram webhook always checks a secret (bot/web/webhooks.py).
        settings = with_webhook_secret(settings)
    owned = services is None or services.settings is not settings
    if owned:
        services = Services(settings)
    assert services is not None
    services.serves_http = True  # no model in a web process (the embedding model included)
    redact = RedactSecrets(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = [
            asyncio.create_task(adapter.on_startup(_RedisValue(
                services.redis_async, services.keys.bot_username(platform, adapter.bot_id))))
            for platform, adapter in app.state.adapters.items()]
        yield
        for task in background:
            task.cancel()
        for adapter in app.state.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        await services.close_async()
        if owned:
            services.close()

    app = FastAPI(title="sealion-bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.services = services
    app.state.redis = services.redis
    app.state.celery = services.celery
    app.state.metrics = services.metrics
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(services.redis))
    app.state.adapters = services.webhook_adapters()
    app.include_router(webhooks_router)
    mount_admin(app, settings)  # only when ADMIN_PASSWORD is set
    mount_webchat(app, settings)  # only when WEB_CHAT is true
    # Outermost: a body over its limit is refused before anything reads it.
    app.add_middleware(BodyLimit, webhook_bytes=settings.max_webhook_body_bytes,
                       other_bytes=settings.max_form_body_bytes,
                       prefixes={"/chat/api/": settings.max_download_bytes + 64 * 1024,
                                 "/admin/knowledge": settings.knowledge_max_file_bytes
                                 + 64 * 1024})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Redis reachable, at least one worker alive, and a chat model that can answer (or is
        still loading); 503 otherwise. Shows every worker's model hosts and their health."""
        checks: dict[str, object] = {}
        try:
            await run_in_threadpool(request.app.state.redis.ping)
            checks["redis"] = "ok"
            workers = await run_in_threadpool(services.worker_registry.alive)
            checks["workers"] = len(workers)
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
            checks["workers"] = 0
        checks["platforms"] = sorted(p.value for p in request.app.state.adapters)
        warning = purpose_warning(request.app.state.settings)
        if warning:  # a warning, not a refusal: readiness is unchanged
            checks["warnings"] = [{"id": "whatsapp_without_purpose", "detail": warning,
                                   "docs": PURPOSE_DOCS}]
        ready = checks["redis"] == "ok" and bool(checks["workers"])
        if ready:
            try:
                hosted = await run_in_threadpool(services.model_status.of, workers)
            except redis.RedisError:
                hosted = {}
            # Written by the workers (already redacted there); redacted again with this
            # process's settings, so no credential leaves through /readyz.
            hosted = redact.redact_value(hosted)
            if hosted:
                checks["models"] = hosted
            chat = [hosts["chat"] for hosts in hosted.values() if "chat" in hosts]
            states = {str(host.get("state")) for host in chat}
            if chat:
                checks["model"] = sorted(states)
            if chat and not states & {"ready", "loading"}:
                # Workers alive but no chat model can answer (bot/cli/startup.py): the first
                # failed one says why.
                ready = False
                down = sorted(chat, key=lambda host: host.get("state") != "failed")[0]
                checks["reason"] = str(down.get("reason", ""))
        return JSONResponse({"status": "ready" if ready else "not ready", **checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of the whole service (every process flushes into Redis); only
        with METRICS_TOKEN, or, without one, to a client on this machine and no proxy."""
        if not metrics_allowed(request, settings):
            return JSONResponse({"detail": "metrics need Authorization: Bearer METRICS_TOKEN"},
                                status_code=403)
        body = await run_in_threadpool(_scrape, services, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


def _scrape(services: Services, registry: CollectorRegistry) -> bytes:
    """This process's pending metrics flushed, then the whole service's read from Redis (the
    other processes flush theirs every METRICS_FLUSH_SECONDS)."""
    services.metrics.flush()
    return generate_latest(registry)
