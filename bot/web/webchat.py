"""The /chat page (WEB_CHAT=true): talk to the bot in a browser, text, photos and documents,
no account.

    GET  /chat                  the page; a cookie names the browser's conversation
    POST /chat/api/messages     text and/or one file, a photo or a document to read (PDF, Word,
                                text, Markdown, HTML; multipart) -> the webhook's accept path
    GET  /chat/api/events       the bot's replies after a cursor (waits up to `wait` seconds)

Messages go through `adapters.local.WebAdapter` and the same pipeline as every platform
(dedupe, pending list, turn, model, reply), so /reset, /lang, photos and documents work as they
do on Telegram. Who may use it: a browser on this machine (a loopback client, a loopback Host, and no
proxy in between: `bot.web.origins`); from anywhere else, only someone signed in to the admin
console, and nobody when the console is off.

The limits of the platforms hold here too: a message (and its file) spends one of the
person's rate-limit tokens (storage/abuse.py, the turn's own decision, made once per message)
before anything of it is stored; over the limit it is refused with 429 and the localized
"slow down" notice. A long poll waits on Redis asynchronously (no thread is held while it
waits), and at most WEB_CHAT_MAX_WAITING wait at once (503 with Retry-After beyond that), so
open chat pages never starve the webhooks.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import threading
import uuid
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile

from adapters.local import LocalDocument, LocalImage, LocalMessage, WebAdapter
from bot.kernel.messages import ConversationKey, Platform, readable_document
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text
from bot.web.origins import from_this_machine
from storage.abuse import RateLimiter
from storage.mailbox import LocalMailbox
from workers.intake import accept_messages_async

CHAT_COOKIE = "sealion_chat"
#: The longest a GET /chat/api/events waits for a reply (seconds).
MAX_WAIT = 10.0
_COOKIE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class WaitSlots:
    """At most `size` long polls wait at once: `take()` is False when all are taken."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0
        self._lock = threading.Lock()  # apps under test may serve from several event loops

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.size:
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]))

router = APIRouter(prefix="/chat", tags=["web chat"], include_in_schema=False)


def _signed_in(request: Request) -> bool:
    """The admin console's session (same cookie, same check as its pages: signed, not
    expired, not signed out)."""
    admin = getattr(request.app.state, "admin", None)
    if admin is None:
        return False
    from bot.admin.security import SESSION_COOKIE

    return admin.session(request.cookies.get(SESSION_COOKIE)) is not None


async def allowed(request: Request) -> None:
    """Local browsers; beyond loopback, the admin console's sign-in (403 / 401 otherwise)."""
    if from_this_machine(request):
        return
    if await run_in_threadpool(_signed_in, request):  # the session is checked in Redis
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
    """A message (form fields `text` and an optional `file`: a photo, or a document the turn
    reads) into the accept path; 202 once accepted. The form is read only after the access
    check (never for a stranger)."""
    _same_origin(request)
    key = _key(request)
    settings: Settings = request.app.state.settings
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException:
        raise
    except Exception:
        raise HTTPException(400, "not a form this page sends") from None
    # `photo`: the field's name before documents were taken (scripts may still send it).
    raw_text, upload = form.get("text", ""), form.get("file") or form.get("photo")
    message_text = raw_text.strip() if isinstance(raw_text, str) else ""
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    file = upload if isinstance(upload, UploadFile) and upload.filename else None
    if not message_text and file is None:
        raise HTTPException(400, "empty message")
    data = b""
    is_photo = False
    if file is not None:
        is_photo = (file.content_type or "").startswith("image/")
        if not is_photo and not readable_document(file.content_type, file.filename):
            raise HTTPException(415, "only photos and documents (PDF, Word, text, Markdown, "
                                     "HTML) can be sent")
        data = await file.read(settings.max_download_bytes + 1)
        if len(data) > settings.max_download_bytes:
            raise HTTPException(413, "file too large")
    event_id = uuid.uuid4().hex
    # The rate limit comes before anything is stored (the file above all). The decision is
    # the turn's own: made once per event id, so the turn finds it and spends nothing more.
    await _spend_token(request, key, event_id, language)
    images: tuple[LocalImage, ...] = ()
    documents: tuple[LocalDocument, ...] = ()
    if file is not None:
        try:
            upload_id = await run_in_threadpool(_mailbox(request).upload, data)
        except redis.RedisError:
            raise HTTPException(503, "not sent: try again in a moment") from None
        if is_photo:
            images = (LocalImage(ref=upload_id, mime_type=file.content_type, size=len(data)),)
        else:
            documents = (LocalDocument(ref=upload_id, mime_type=file.content_type,
                                       size=len(data), name=(file.filename or "")[-255:]),)
    try:
        message = LocalMessage(chat=key.chat_id, event_id=event_id, text=message_text,
                               images=images, documents=documents,
                               language_hint=language[:35] or None)
    except ValueError:
        raise HTTPException(400, "message too long") from None
    # Its token was spent above: the turn's screen spends none for it.
    inbound = _adapter(request).inbound(message).model_copy(update={"rate_checked": True})
    state = request.app.state
    try:
        await accept_messages_async(state.services.inbox_async, state.celery, state.metrics,
                                    [inbound], settings.album_window_seconds)
    except redis.RedisError:  # nothing was recorded: the page may send it again
        raise HTTPException(503, "not sent: try again in a moment") from None
    return JSONResponse({"message_id": inbound.message_id}, status_code=202)


async def _spend_token(request: Request, key: ConversationKey, event_id: str,
                       language: str) -> None:
    """One of the person's rate-limit tokens for the message `event_id`; 429 with the
    localized notice when none is left, 503 when Redis cannot say (nothing is stored)."""
    limiter: RateLimiter = request.app.state.webchat_limiter
    probe = _adapter(request).inbound(LocalMessage(chat=key.chat_id, event_id=event_id))
    try:
        decision = await run_in_threadpool(limiter.check, probe)
    except redis.RedisError:
        raise HTTPException(503, "not sent: try again in a moment") from None
    if not decision.allowed:
        # One token comes back every window/messages seconds.
        retry = math.ceil(limiter.window_seconds / max(limiter.messages, 1))
        raise HTTPException(429, text(Text.RATE_LIMITED, language or None),
                            headers={"Retry-After": str(retry)})


@router.get("/api/events")
async def events(request: Request, _: Allowed, after: str = "0-0",
                 wait: float = 0.0) -> JSONResponse:
    """The bot's events (messages, typing, end of a reply) after the cursor `after`; with
    `wait`, held until one comes (at most MAX_WAIT seconds) without holding a thread."""
    if not re.fullmatch(r"\d{1,20}-\d{1,20}", after):
        raise HTTPException(400, "bad cursor")
    key = _key(request)
    block = int(min(max(wait, 0.0), MAX_WAIT) * 1000) or None
    slots: WaitSlots = request.app.state.webchat_waiting
    if block and not slots.take():
        raise HTTPException(503, "too many chat pages are waiting: try again shortly",
                            headers={"Retry-After": "2"})
    try:
        found = await request.app.state.webchat_outbox.read(key, after, block_ms=block)
    except redis.RedisError:
        raise HTTPException(503, "replies unavailable: try again shortly",
                            headers={"Retry-After": "2"}) from None
    finally:
        if block:
            slots.give_back()
    return JSONResponse({"events": [{"id": i, **e} for i, e in found],
                         "cursor": found[-1][0] if found else after},
                        headers={"Cache-Control": "no-store"})


def mount_webchat(app: FastAPI, settings: Settings) -> bool:
    """Serve /chat when WEB_CHAT is true; its adapter, mailbox, rate limiter, inbox, broker and
    metrics are the app's services (`app.state.services`)."""
    if not settings.web_chat:
        return False
    services = app.state.services
    app.state.webchat_adapter = services.new_adapter(Platform.WEB)
    app.state.webchat_mailbox = services.mailbox
    # Waits for replies: asynchronous reads that outlast the app client's socket timeout.
    app.state.webchat_outbox = services.outbox_reader(MAX_WAIT)
    app.state.webchat_waiting = WaitSlots(settings.web_chat_max_waiting)
    app.state.webchat_limiter = services.rate_limiter
    app.include_router(router)
    return True
