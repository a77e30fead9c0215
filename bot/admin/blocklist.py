"""The console's block list: block and unblock a person; blocked people's messages are
acknowledged, logged as blocked and never reach the model (`storage.abuse.BlockList`,
checked by the turn's abuse screen in the worker)."""

from __future__ import annotations

import logging

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.admin.routes import (
    PageSession,
    _check_post,
    _person,
    _render,
    _safe_next,
    _state,
    router,
    templates,
)
from bot.kernel.logs import pseudonym
from bot.kernel.messages import Platform
from storage.abuse import BlockList

log = logging.getLogger(__name__)


def _blocklist(request: Request) -> BlockList:
    state = _state(request)
    return BlockList(state.redis, state.keys)


def _is_blocked(request: Request, platform: str, person: str) -> bool:
    """For the templates: whether a person is blocked (False when Redis cannot tell)."""
    try:
        return bool(person) and _blocklist(request).is_blocked(
            platform, _state(request).canonical(Platform(platform), person))
    except Exception:  # noqa: BLE001 - a page must render even when Redis is away
        return False


templates.env.globals["is_blocked"] = _is_blocked


@router.get("/blocked", response_class=HTMLResponse)
def blocked_people(request: Request, session: PageSession) -> HTMLResponse:
    """Everyone blocked, with unblock buttons and a form to block someone by id."""
    return _render(request, "blocked.html", {"session": session,
                                             "people": _blocklist(request).all(),
                                             "platforms": ["telegram", "line", "whatsapp"]})


@router.post("/people/block")
def block_person(request: Request, session: PageSession, platform: str = Form(...),
                 user_id: str = Form(...), note: str = Form(""), csrf: str = Form(""),
                 next: str = Form("/admin/blocked")) -> Response:
    _check_post(request, session, csrf)
    chosen, user_id = _person(platform, user_id)
    # Any id of a person blocks the person (WhatsApp: phone and business-scoped ids).
    _blocklist(request).block(chosen, _state(request).canonical(chosen, user_id), note.strip())
    log.warning("admin blocked %s user %s", chosen.value, pseudonym(user_id))
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/people/unblock")
def unblock_person(request: Request, session: PageSession, platform: str = Form(...),
                   user_id: str = Form(...), csrf: str = Form(""),
                   next: str = Form("/admin/blocked")) -> Response:
    _check_post(request, session, csrf)
    chosen, user_id = _person(platform, user_id)
    _blocklist(request).unblock(chosen, _state(request).canonical(chosen, user_id))
    log.warning("admin unblocked %s user %s", chosen.value, pseudonym(user_id))
    return RedirectResponse(_safe_next(next), status_code=303)
