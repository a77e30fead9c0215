"""The console's side of the hand-off to a person (issue 23, `storage.handoff`): take over a
conversation, answer it, release it; the list of conversations waiting for a person, and their
count on every page.

The routes take the console's session and CSRF token like its other forms, and answer 303 to the
conversation page (scripts: POST /admin/login, keep the cookie, read the `csrf` field). An
answer is sent by an I/O worker (`workers.tasks.deliver_operator_reply`): split and formatted
like the bot's, logged as the operator's, kept in the history for when the bot takes over.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from importlib import resources

from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bot.admin.routes import (
    DataSession,
    PageSession,
    _check_post,
    _render,
    _state,
    router,
    templates,
)
from bot.kernel.languages import normalise
from bot.kernel.messages import Platform
from storage.handoff import HandoffStore, Hold
from storage.log.queries import ConversationRow

log = logging.getLogger(__name__)

#: WhatsApp's customer service window: free-form messages only this long after the person
#: last wrote.
WHATSAPP_WINDOW = dt.timedelta(hours=24)
MAX_REPLY_CHARS = 4000


def _handoffs(request: Request) -> HandoffStore:
    state = _state(request)
    return HandoffStore(state.redis, ttl=state.settings.handoff_ttl_seconds, keys=state.keys)


def _waiting(request: Request) -> int:
    """For the templates: how many conversations are held for a person (0 if Redis is away)."""
    try:
        return _handoffs(request).count()
    except Exception:  # noqa: BLE001 - a page must render even when Redis is away
        return 0


def _hold_of(request: Request, c: ConversationRow) -> Hold | None:
    """For the templates: the conversation's hold, if held."""
    try:
        return _handoffs(request).get(c.key)
    except Exception:  # noqa: BLE001
        return None


def _moment(seconds: float | None) -> str:
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


templates.env.filters["moment"] = _moment
templates.env.globals["waiting_count"] = _waiting
templates.env.globals["hold_of"] = _hold_of


def _conversation(request: Request, conversation_id: int) -> ConversationRow:
    found = _state(request).log.conversation(conversation_id)
    if found is None:
        raise HTTPException(404, "this conversation is not in the log")
    return found


def _back(conversation_id: int, note: str = "") -> RedirectResponse:
    target = f"/admin/conversations/{conversation_id}" + (f"?note={note}" if note else "")
    return RedirectResponse(target, status_code=303)


def _take_over(request: Request, c: ConversationRow, operator: str) -> Hold:
    hold = _handoffs(request).start(c.key, by="admin", operator=operator)
    log.warning("admin took over conversation %s", c.id)
    return hold


@router.post("/conversations/{conversation_id}/handoff")
def take_over(request: Request, conversation_id: int, session: PageSession,
              csrf: str = Form("")) -> Response:
    """Hold the conversation: the bot stops answering; the person is told on their next
    message that a person will reply."""
    _check_post(request, session, csrf)
    _take_over(request, _conversation(request, conversation_id), session.username)
    return _back(conversation_id)


@router.post("/conversations/{conversation_id}/reply")
def reply(request: Request, conversation_id: int, session: PageSession,
          text: str = Form(""), csrf: str = Form("")) -> Response:
    """Answer the person (taking over first if the bot still answers them)."""
    _check_post(request, session, csrf)
    state = _state(request)
    c = _conversation(request, conversation_id)
    words = text.strip()
    if not words or len(words) > MAX_REPLY_CHARS:
        raise HTTPException(400, f"write 1 to {MAX_REPLY_CHARS} characters")
    if c.platform == Platform.WHATSAPP.value and not _in_whatsapp_window(request, c):
        return _render(request, "message.html", {
            "session": session, "title": "Cannot be delivered",
            "text": "This answer cannot be delivered: more than 24 hours have passed since the "
                    "person last wrote (WhatsApp's customer service window). It was not sent."},
            status_code=409)
    if state.enqueue is None:
        raise HTTPException(503, "no broker to send the answer with")
    handoffs = _handoffs(request)
    if handoffs.touch(c.key, session.username) is None:
        _take_over(request, c, session.username)
    language = normalise(c.language) or state.settings.default_language
    state.enqueue("workers.tasks.deliver_operator_reply",
                  [c.key.model_dump(mode="json"), words, session.username, uuid.uuid4().hex,
                   language])
    log.warning("admin answered conversation %s", c.id)
    return _back(conversation_id)


@router.post("/conversations/{conversation_id}/release")
def release(request: Request, conversation_id: int, session: PageSession,
            csrf: str = Form("")) -> Response:
    """End the hold: the bot answers the next message, with the whole conversation."""
    _check_post(request, session, csrf)
    c = _conversation(request, conversation_id)
    _handoffs(request).release(c.key)
    log.warning("admin released conversation %s", c.id)
    return _back(conversation_id)


@router.get("/handoffs", response_class=HTMLResponse)
def waiting(request: Request, session: PageSession) -> HTMLResponse:
    """The conversations held for a person, those nobody answered yet first."""
    state = _state(request)
    handoffs = _handoffs(request)
    handoffs.prune()
    live = sorted(handoffs.live(), key=lambda found: (found[1].replied is not None,
                                                       found[1].since))
    rows = [{"key": key, "hold": hold, "c": state.log.conversation_of(key)}
            for key, hold in live]
    return _render(request, "handoffs.html", {"session": session, "rows": rows})


@router.get("/conversations/{conversation_id}/live")
def live(request: Request, conversation_id: int, session: DataSession,
         after: int = 0) -> JSONResponse:
    """What the conversation page adds without reloading: the messages newer than `after` as
    the page's own HTML (Jinja's escaping), whether it is held, and the waiting count."""
    state = _state(request)
    found = state.log.thread(conversation_id, limit=50)
    if found is None:
        raise HTTPException(404, "this conversation is not in the log")
    bubble = templates.get_template("_message.html")
    new = [m for m in found.messages if m.id > after]
    return JSONResponse({
        "html": "".join(bubble.render(m=m, request=request) for m in new),
        "last": new[-1].id if new else after,
        "held": _hold_of(request, found.conversation) is not None,
        "waiting": _waiting(request),
    }, headers={"Cache-Control": "no-store"})


_SCRIPT = resources.files("bot.admin").joinpath("static/console.js")


@router.get("/static/console.js")
def console_script(session: DataSession) -> Response:
    """The console's one script (the live conversation page), served from the package to
    signed-in browsers (like every console route)."""
    return Response(_SCRIPT.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache"})


def _in_whatsapp_window(request: Request, c: ConversationRow) -> bool:
    thread = _state(request).log.thread(c.id, limit=50)
    last_in = max((m.created_at for m in thread.messages if m.direction == "in"),
                  default=None) if thread else None
    if last_in is None:
        return False
    if last_in.tzinfo is None:
        last_in = last_in.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) - last_in < WHATSAPP_WINDOW
