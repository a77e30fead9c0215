"""The admin console at /admin: review the conversation log, export it, delete a person's data.

    from bot.admin import mount_admin
    mount_admin(app, settings)      # in create_app; does nothing when ADMIN_PASSWORD is unset

Off (every /admin path answers 404) unless ADMIN_PASSWORD is set, with 12 characters or more
(a shorter one leaves it off, with an error at startup). Sign-in with ADMIN_USERNAME and
ADMIN_PASSWORD; the session is a signed, HttpOnly, SameSite=Strict cookie (Secure over https)
that acts only while its session is recorded in Redis: signing out ends it on the server.
Pages are server-rendered Jinja2 with inline CSS and no JavaScript, under a strict CSP.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin import (
    blocklist,  # noqa: F401  (its routes join the router)
    handoff,  # noqa: F401  (its routes join the router)
    insights,  # noqa: F401  (its routes join the router)
    knowledge,  # noqa: F401  (its routes join the router)
)
from bot.admin.routes import AdminState, router, templates
from bot.admin.security import (
    MIN_PASSWORD_LENGTH,
    Credentials,
    LoginThrottle,
    SessionCodec,
    SessionStore,
    session_secret,
)
from bot.composition import Services
from bot.kernel.settings import Settings
from storage.erasure import Erasure, erasure_hold_seconds
from storage.log import ConversationLog

__all__ = ["AdminState", "admin_enabled", "mount_admin", "router"]

log = logging.getLogger(__name__)

_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
      b"frame-ancestors 'none'; base-uri 'none'; script-src 'self'; connect-src 'self'")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class AdminHeaders:
    """Security headers on every /admin answer; pages and exports are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/admin"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def admin_enabled(settings: Settings) -> bool:
    return bool(settings.admin_password and settings.admin_password.get_secret_value())


def mount_admin(app: FastAPI, settings: Settings, *,
                conversation_log: ConversationLog | None = None,
                redis_client: redis.Redis | None = None) -> bool:
    """Add the console to `app` when ADMIN_PASSWORD is set; returns whether it did.

    Uses the app's services (`app.state.services`, from the composition root) for its Redis
    client and the log at DATABASE_URL, unless `redis_client` or `conversation_log` is given. Calling it twice does nothing more.
    """
    if getattr(app.state, "admin", None) is not None:
        return True
    if not admin_enabled(settings):
        log.info("admin console off: ADMIN_PASSWORD is not set")
        return False
    assert settings.admin_password is not None
    password = settings.admin_password.get_secret_value()
    if len(password) < MIN_PASSWORD_LENGTH:
        log.error("admin console off: ADMIN_PASSWORD has %d characters, it needs at least %d",
                  len(password), MIN_PASSWORD_LENGTH)
        return False
    try:
        secret = session_secret(settings)
    except OSError as exc:
        log.error("admin console off: no session secret (set ADMIN_SESSION_SECRET, or make "
                  "DATA_DIR writable): %s", exc)
        return False
    services = getattr(app.state, "services", None) or Services(settings)
    client = redis_client or services.redis
    keys = services.keys
    conversation_log = conversation_log or services.conversation_log
    app.state.admin = AdminState(
        settings=settings,
        log=conversation_log,
        redis=client,
        credentials=Credentials(settings.admin_username, password),
        codec=SessionCodec(secret, password),
        throttle=LoginThrottle(),
        keys=keys,
        sessions=SessionStore(client, keys),
        erasure=Erasure(client, conversation_log, keys,
                        hold_seconds=erasure_hold_seconds(settings)),
        enqueue=lambda name, args: services.celery.send_task(name, args=args, queue="io"),
    )
    app.include_router(router)
    app.add_middleware(AdminHeaders)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    return True


async def _database_error(request: Request, exc: Any) -> HTMLResponse:
    """The log's database is down or has no tables yet: say so instead of a bare 500."""
    log.error("admin console: conversation log unavailable: %s", type(exc).__name__)
    return templates.TemplateResponse(request, "message.html", {
        "session": None, "retention_days": 0, "title": "Conversation log unavailable",
        "text": "The conversation log's database could not be read. If this is a new "
                "installation, run `sealion-bot migrate` (DATABASE_URL) and reload.",
    }, status_code=503)
