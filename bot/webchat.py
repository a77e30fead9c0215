"""The /chat page (WEB_CHAT=true): talk to the bot in a browser, text and photos, no account.

    GET  /chat                  the page; a cookie names the browser's conversation
    POST /chat/api/messages     text and/or one photo (multipart) -> the webhook's accept path
    GET  /chat/api/events       the bot's replies after a cursor (waits up to `wait` seconds)

Messages go through `adapters.local.WebAdapter` and the same pipeline as every platform
(dedupe, pending list, turn, model, reply), so /reset, /lang and photos work as they do on
Telegram. Who may use it: a browser on this machine (a loopback client, and no proxy in
between); from anywhere else, only someone signed in to the admin console, and nobody when the
console is off.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile

from adapters.local import LocalImage, LocalMailbox, LocalMessage, WebAdapter
from bot.messages import ConversationKey
from bot.settings import Settings, is_loopback
from bot.webhooks import accept_messages

CHAT_COOKIE = "sealion_chat"
#: The longest a GET /chat/api/events waits for a reply (seconds).
MAX_WAIT = 10.0
_COOKIE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]))

router = APIRouter(prefix="/chat", tags=["web chat"], include_in_schema=False)


def _local(request: Request) -> bool:
    """A browser on this machine that came through no proxy (a proxy adds these headers)."""
    proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    return bool(request.client and is_loopback(request.client.host)) and not proxied


def _signed_in(request: Request) -> bool:
    """The admin console's session (same cookie, same check as its pages)."""
    admin = getattr(request.app.state, "admin", None)
    if admin is None:
        return False
    from bot.admin.security import SESSION_COOKIE

    return admin.codec.read(request.cookies.get(SESSION_COOKIE),
                            admin.credentials.username) is not None


def allowed(request: Request) -> None:
    """Local browsers; beyond loopback, the admin console's sign-in (403 / 401 otherwise)."""
    if _local(request) or _signed_in(request):
        return
    if getattr(request.app.state, "admin", None) is None:
        raise HTTPException(403, "The web chat is open only on this machine. To use it from "
                                 "elsewhere, set ADMIN_PASSWORD and sign in at /admin/login.")
    raise HTTPException(401, "Sign in at /admin/login, then open /chat again.")


Allowed = Annotated[None, Depends(allowed)]


def _chat_id(request: Request) -> str | None:
    value = request.cookies.get(CHAT_COOKIE, "")
    return value if _COOKIE_RE.fullmatch(value) else None


def _key(request: Request) -> ConversationKey:
    chat = _chat_id(request)
    if chat is None:
        raise HTTPException(400, "no chat cookie: reload /chat")
    return _adapter(request).key(chat)


def _adapter(request: Request) -> WebAdapter:
    return request.app.state.webchat_adapter


def _mailbox(request: Request) -> LocalMailbox:
    return request.app.state.webchat_mailbox


def _same_origin(request: Request) -> None:
    """A POST from another site's page is refused (the cookie is SameSite=Strict as well)."""
    origin = request.headers.get("origin")
    if origin and not hmac.compare_digest(origin, f"{request.url.scheme}://{request.url.netloc}"):
        raise HTTPException(403, "cross-origin request refused")


@router.get("")
async def page(request: Request, _: Allowed) -> HTMLResponse:
    """The chat page."""
    chat = _chat_id(request) or secrets.token_urlsafe(16)
    cursor = await run_in_threadpool(_mailbox(request).last_id, _adapter(request).key(chat))
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template("chat.html").render(cursor=cursor, nonce=nonce)
    response = HTMLResponse(html, headers={
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
            "img-src 'self' blob:; connect-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"),
        "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
    response.set_cookie(CHAT_COOKIE, chat, max_age=365 * 24 * 3600, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/chat")
    return response


@router.post("/api/messages")
async def send_message(request: Request, _: Allowed) -> JSONResponse:
    """A message (form fields `text` and optional `photo`) into the accept path; 202 once
    accepted. The form is read only after the access check (never for a stranger)."""
    _same_origin(request)
    key = _key(request)
    settings: Settings = request.app.state.settings
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException:
        raise
    except Exception:
        raise HTTPException(400, "not a form this page sends") from None
    raw_text, photo = form.get("text", ""), form.get("photo")
    text = raw_text.strip() if isinstance(raw_text, str) else ""
    images: tuple[LocalImage, ...] = ()
    if isinstance(photo, UploadFile) and photo.filename:
        if not (photo.content_type or "").startswith("image/"):
            raise HTTPException(415, "only photos (image/*) can be sent")
        data = await photo.read(settings.max_download_bytes + 1)
        if len(data) > settings.max_download_bytes:
            raise HTTPException(413, "photo too large")
        try:
            upload_id = await run_in_threadpool(_mailbox(request).upload, data)
        except redis.RedisError:
            raise HTTPException(503, "not sent: try again in a moment") from None
        images = (LocalImage(ref=upload_id, mime_type=photo.content_type, size=len(data)),)
    if not text and not images:
        raise HTTPException(400, "empty message")
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    try:
        message = LocalMessage(chat=key.chat_id, text=text, images=images,
                               language_hint=language[:35] or None)
    except ValueError:
        raise HTTPException(400, "message too long") from None
    inbound = _adapter(request).inbound(message)
    state = request.app.state
    try:
        await run_in_threadpool(accept_messages, state.inbox, state.celery, state.metrics,
                                [inbound], settings.album_window_seconds)
    except redis.RedisError:  # nothing was recorded: the page may send it again
        raise HTTPException(503, "not sent: try again in a moment") from None
    return JSONResponse({"message_id": inbound.message_id}, status_code=202)


@router.get("/api/events")
async def events(request: Request, _: Allowed, after: str = "0-0",
                 wait: float = 0.0) -> JSONResponse:
    """The bot's events (messages, typing, end of a reply) after the cursor `after`."""
    if not re.fullmatch(r"\d{1,20}-\d{1,20}", after):
        raise HTTPException(400, "bad cursor")
    key = _key(request)
    block = int(min(max(wait, 0.0), MAX_WAIT) * 1000) or None
    found = await run_in_threadpool(_mailbox(request).read, key, after, block_ms=block)
    return JSONResponse({"events": [{"id": i, **e} for i, e in found],
                         "cursor": found[-1][0] if found else after},
                        headers={"Cache-Control": "no-store"})


def mount_webchat(app: FastAPI, settings: Settings) -> bool:
    """Serve /chat when WEB_CHAT is true; uses create_app's inbox, broker and metrics."""
    if not settings.web_chat:
        return False
    app.state.webchat_adapter = WebAdapter(settings)
    # Its own client: a wait for replies outlasts the app client's socket timeout.
    client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=MAX_WAIT + 5,
                                  socket_connect_timeout=2)
    app.state.webchat_mailbox = LocalMailbox(
        client, upload_ttl=max(settings.turn_timeout_seconds * 4, 3600),
        outbox_ttl=settings.history_ttl_seconds)
    app.include_router(router)
    return True
