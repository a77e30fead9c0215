"""The console's pages: sign-in, the conversation list, a thread, exports, deleting a person.

Handlers are plain functions (FastAPI runs them in its thread pool): the log is SQLAlchemy and
Redis is the synchronous client. Every page but the login asks for a session; a page without one
redirects to the login, an image or export answers 401. Every POST carries a CSRF token.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import redis
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from bot.admin.export import EXPORT_FORMATS, export_lines
from bot.admin.security import (
    LOGIN_COOKIE,
    LOGIN_MAX_AGE,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    AdminSession,
    Credentials,
    LoginThrottle,
    SessionCodec,
    SessionStore,
    csrf_ok,
)
from bot.kernel.logs import pseudonym
from bot.kernel.messages import Platform
from bot.kernel.settings import Settings
from storage.erasure import Erasure
from storage.history import RedisHistory
from storage.identities import IdentityMap
from storage.keys import KeyBuilder
from storage.log import ConversationFilter, ConversationLog
from workers.turn.budget import WARN_AT, this_month

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PER_PAGE = 50
THREAD_PAGE = 200


def _when(value: dt.datetime | None, seconds: bool = False) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


templates.env.filters["when"] = _when
templates.env.filters["number"] = _number


@dataclass
class AdminState:
    settings: Settings
    log: ConversationLog
    redis: redis.Redis
    credentials: Credentials
    codec: SessionCodec
    throttle: LoginThrottle
    keys: KeyBuilder
    sessions: SessionStore
    erasure: Erasure
    #: Queues a Celery task by name (operator replies of the hand-off); None: no broker.
    enqueue: Any = None

    def session(self, cookie: str | None) -> AdminSession | None:
        """The signed-in session a cookie carries: signed, not expired, and not signed out."""
        found = self.codec.read(cookie, self.credentials.username)
        return found if found is not None and self.sessions.alive(found.session_id) else None

    def history(self) -> RedisHistory:
        return RedisHistory(self.redis, ttl=self.settings.history_ttl_seconds,
                            max_turns=self.settings.history_max_turns, keys=self.keys)

    def canonical(self, platform: Platform, user_id: str) -> str:
        """The id a person's conversations, rate limit and block entry are keyed by: a WhatsApp
        phone or business-scoped id names its person (storage/identities.py)."""
        return IdentityMap(self.redis, self.keys).canonical(platform, user_id)


# --- helpers -----------------------------------------------------------------------------------


def _state(request: Request) -> AdminState:
    state = getattr(request.app.state, "admin", None)
    if state is None:  # the router was included without mount_admin: behave as "off"
        raise HTTPException(404)
    return state


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only a path of this console may follow a login (no open redirect)."""
    if target and target.startswith("/admin") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target and "\r" not in target:
        return target
    return "/admin"


def _session(request: Request) -> AdminSession | None:
    return _state(request).session(request.cookies.get(SESSION_COOKIE))


def page_session(request: Request) -> AdminSession:
    """A page: without a session, off to the login (and back here after it)."""
    session = _session(request)
    if session is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": f"/admin/login?next={quote(here)}"})
    return session


def data_session(request: Request) -> AdminSession:
    """An image or an export: 401 without a session."""
    session = _session(request)
    if session is None:
        raise HTTPException(401, "sign in at /admin/login")
    return session


PageSession = Annotated[AdminSession, Depends(page_session)]
DataSession = Annotated[AdminSession, Depends(data_session)]


def _check_post(request: Request, session: AdminSession, token: str | None) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin != expected:
            raise HTTPException(403, "cross-origin request refused")
    if not csrf_ok(session, token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def _render(request: Request, name: str, context: dict[str, Any],
            status_code: int = 200) -> HTMLResponse:
    state = _state(request)
    context = {"session": None, "retention_days": state.settings.retention_days, **context}
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _date(value: str | None, end: bool = False) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, tzinfo=dt.UTC)
    return moment


#: The list's "rated" filter: its values and the rating each selects.
RATED = {"up": 1, "down": -1}


def _filter(platform: str | None, language: str | None, date_from: str | None,
            date_to: str | None, q: str | None, flagged: bool = False,
            rated: str | None = None) -> ConversationFilter:
    if platform and platform not in {p.value for p in Platform}:
        platform = None
    return ConversationFilter(platform=platform or None, language=language or None,
                              since=_date(date_from), until=_date(date_to, end=True),
                              search=(q or "").strip() or None, flagged=flagged,
                              rated=RATED.get(rated or ""))


def _searched(state: AdminState, q: str | None) -> str | None:
    """A search for one WhatsApp id (phone or business-scoped) finds its person, whichever of
    their ids the log keys them by."""
    word = (q or "").strip()
    if not word or " " in word:
        return q
    try:
        return state.canonical(Platform.WHATSAPP, word)
    except redis.RedisError:  # the list must render while Redis is away
        return q


def _whatsapp_budget(state: AdminState) -> dict[str, Any] | None:
    """This month's WhatsApp messages against WHATSAPP_MONTHLY_MESSAGE_BUDGET: `level` is
    "warning" from 90 %, "paused" at 100 % (workers/turn/budget.py); None without WhatsApp."""
    s = state.settings
    if not s.whatsapp_enabled:
        return None
    counter = state.keys.sent_month(Platform.WHATSAPP, str(s.whatsapp_phone_number_id),
                                    this_month())
    try:
        sent = int(state.redis.get(counter) or 0)  # type: ignore[arg-type]
    except redis.RedisError:
        return None
    budget = s.whatsapp_monthly_message_budget
    level = ("paused" if budget and sent >= budget
             else "warning" if budget and sent >= WARN_AT * budget else "")
    return {"sent": sent, "budget": budget, "level": level}


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _export(rows: Any, fmt: str, filename: str) -> StreamingResponse:
    if fmt not in EXPORT_FORMATS:
        raise HTTPException(404)
    return StreamingResponse(export_lines(rows, fmt), media_type=EXPORT_FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{filename}.{fmt}"',
        "Cache-Control": "no-store",
    })


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")


# --- sign in and out ---------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    state = _state(request)
    if _session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)  # type: ignore[return-value]
    return _login_form(request, state, next=next)


def _login_form(request: Request, state: AdminState, *, next: str | None,
                error: str | None = None, status_code: int = 200,
                username: str = "") -> HTMLResponse:
    token, cookie = state.codec.login_token()
    response = _render(request, "login.html", {
        "csrf": token, "next": _safe_next(next), "error": error,
        "username": username or state.credentials.username,
    }, status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_MAX_AGE, path="/admin",
                        httponly=True, samesite="strict", secure=_secure(request))
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: str = Form(""), password: str = Form(""),
          csrf: str = Form(""), next: str = Form("/admin")) -> Response:
    state = _state(request)
    if not state.codec.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf):
        return _login_form(request, state, next=next, status_code=403, username=username,
                           error="The form expired. Please sign in again.")
    client = _client(request)
    wait = state.throttle.wait(client)
    response: Response
    if wait > 0:
        response = _login_form(
            request, state, next=next, status_code=429, username=username,
            error=f"Too many failed attempts. Try again in {math.ceil(wait)} s.")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    if not state.credentials.check(username, password):
        delay = state.throttle.failure(client)
        log.warning("admin login failed from %s (%d in a row)", client,
                    state.throttle.failures(client))
        response = _login_form(
            request, state, next=next, status_code=401, username=username,
            error=f"Wrong username or password. Next attempt possible in {math.ceil(delay)} s.")
        response.headers["Retry-After"] = str(math.ceil(delay))
        return response
    state.throttle.success(client)
    try:
        session_id = state.sessions.start()
    except redis.RedisError:
        raise HTTPException(503, "sessions cannot be recorded (Redis is unavailable): "
                                 "try again in a moment") from None
    log.info("admin login from %s", client)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, state.codec.issue(state.credentials.username, session_id),
                        max_age=SESSION_MAX_AGE, path="/admin", httponly=True,
                        samesite="strict", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/logout")
def logout(request: Request, session: PageSession, csrf: str = Form("")) -> Response:
    _check_post(request, session, csrf)
    try:
        _state(request).sessions.end(session.session_id)  # the cookie stops acting everywhere
    except redis.RedisError:
        raise HTTPException(503, "not signed out (Redis is unavailable): try again in a "
                                 "moment") from None
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin", httponly=True, samesite="strict",
                           secure=_secure(request))
    return response


# --- the list ----------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def conversations(request: Request, session: PageSession,
                  platform: str | None = None, language: str | None = None,
                  date_from: str | None = Query(None, alias="from"),
                  date_to: str | None = Query(None, alias="to"), q: str | None = None,
                  page: int = Query(1, ge=1, le=100_000), flagged: bool = False,
                  rated: str | None = None) -> HTMLResponse:
    state = _state(request)
    flt = _filter(platform, language, date_from, date_to, _searched(state, q), flagged, rated)
    result = state.log.list_conversations(flt, page=page, per_page=PER_PAGE)
    filters = {"platform": flt.platform or "", "language": flt.language or "",
               "from": date_from or "", "to": date_to or "", "q": q or "",
               "flagged": "1" if flagged else "",
               "rated": rated if rated in RATED else ""}
    deleted = request.query_params.get("deleted")
    return _render(request, "list.html", {
        "session": session, "result": result, "filters": filters,
        "platforms": [p.value for p in Platform], "languages": state.log.languages(),
        "query": _query(**filters), "page_query": lambda n: _query(**filters, page=n),
        "deleted": deleted, "deleted_messages": request.query_params.get("messages"),
        "deleted_keys": request.query_params.get("keys"),
        "whatsapp_budget": _whatsapp_budget(state),
    })


@router.get("/export.{fmt}")
def export_filtered(request: Request, fmt: str, session: DataSession,
                    platform: str | None = None, language: str | None = None,
                    date_from: str | None = Query(None, alias="from"),
                    date_to: str | None = Query(None, alias="to"),
                    q: str | None = None, flagged: bool = False,
                    rated: str | None = None) -> StreamingResponse:
    state = _state(request)
    flt = _filter(platform, language, date_from, date_to, _searched(state, q), flagged, rated)
    log.info("admin export (%s) of the filtered conversations", fmt)
    return _export(state.log.export_rows(flt), fmt, f"conversations-{_stamp()}")


@router.get("/export/ratings.jsonl")
def export_ratings(request: Request, session: DataSession,
                   date_from: str | None = Query(None, alias="from"),
                   date_to: str | None = Query(None, alias="to")) -> StreamingResponse:
    """The rated answers as JSON Lines (prompt, answer, language, rating, source, platform,
    time) for evaluating the model: no ids, names or phone numbers."""
    state = _state(request)
    log.info("admin export of the rated answers")
    rows = state.log.rated_pairs(since=_date(date_from), until=_date(date_to, end=True))
    return _export(rows, "jsonl", f"ratings-{_stamp()}")


# --- one conversation --------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
def thread(request: Request, conversation_id: int,
           session: PageSession,
           before: int | None = None) -> HTMLResponse:
    state = _state(request)
    found = state.log.thread(conversation_id, limit=THREAD_PAGE, before=before)
    if found is None:
        return _render(request, "message.html", {
            "session": session, "title": "Not found",
            "text": "This conversation is not in the log (deleted, or purged by retention)."},
            status_code=404)
    return _render(request, "thread.html", {"session": session, "thread": found,
                                            "c": found.conversation})


@router.get("/conversations/{conversation_id}/export.{fmt}")
def export_conversation(request: Request, conversation_id: int, fmt: str,
                        session: DataSession) -> StreamingResponse:
    state = _state(request)
    if state.log.conversation(conversation_id) is None:
        raise HTTPException(404)
    log.info("admin export (%s) of conversation %d", fmt, conversation_id)
    return _export(state.log.export_rows(conversation_id=conversation_id), fmt,
                   f"conversation-{conversation_id}-{_stamp()}")


@router.get("/images/{image_id}")
def image(request: Request, image_id: int,
          session: DataSession) -> Response:
    found = _state(request).log.image(image_id)
    if found is None:
        raise HTTPException(404)
    data, mime_type = found
    return Response(data, media_type=mime_type if mime_type.startswith("image/") else
                    "application/octet-stream",
                    headers={"Cache-Control": "private, max-age=3600",
                             "Content-Disposition": f'inline; filename="image-{image_id}.jpg"'})


@router.get("/audio/{audio_id}")
def audio(request: Request, audio_id: int, session: DataSession) -> Response:
    """A voice note kept with ASR_KEEP_AUDIO, for the thread's player."""
    found = _state(request).log.audio(audio_id)
    if found is None:
        raise HTTPException(404)
    data, mime_type = found
    media_type = mime_type.split(";")[0].strip()
    return Response(data, media_type=media_type if media_type.startswith("audio/") else
                    "application/octet-stream",
                    headers={"Cache-Control": "private, max-age=3600",
                             "Content-Disposition": f'inline; filename="voice-{audio_id}"'})


# --- deleting a person -------------------------------------------------------------------------


def _person(platform: str, user_id: str) -> tuple[Platform, str]:
    try:
        chosen = Platform(platform)
    except ValueError:
        raise HTTPException(400, "unknown platform") from None
    user_id = user_id.strip()
    if not user_id or len(user_id) > 128:
        raise HTTPException(400, "a user id is required")
    return chosen, user_id


@router.get("/people/delete", response_class=HTMLResponse)
def delete_person_page(request: Request, platform: str, user_id: str,
                       session: PageSession) -> HTMLResponse:
    chosen, user_id = _person(platform, user_id)
    erasure = _state(request).erasure
    preview = erasure.preview(chosen, user_id)
    return _render(request, "delete.html", {
        "session": session, "platform": chosen.value, "user_id": user_id,
        "aliases": [a for a in erasure.aliases(chosen, user_id) if a != user_id],
        "conversations": preview.conversations, "redis_only": preview.redis_only,
        "group_messages": preview.group_messages, "name": preview.name,
    })


@router.post("/people/delete")
def delete_person(request: Request, session: PageSession, platform: str = Form(...),
                  user_id: str = Form(...), csrf: str = Form("")) -> Response:
    _check_post(request, session, csrf)
    chosen, user_id = _person(platform, user_id)
    report = _state(request).erasure.erase_person(chosen, user_id)
    log.warning("admin deleted the data of %s user %s: %d message(s), %d Redis key(s)",
                chosen.value, pseudonym(user_id), report.messages, report.redis_keys)
    target = "/admin?" + _query(deleted=f"{chosen.value}:{user_id}", messages=report.messages,
                                keys=report.redis_keys)
    return RedirectResponse(target, status_code=303)
