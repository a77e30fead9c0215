"""The console's Knowledge page: the knowledge base's documents listed, uploaded (read in a
decode process under KNOWLEDGE_MAX_FILE_BYTES and KNOWLEDGE_MAX_PAGES) and removed, and one
document's passages with their pages and sections (`storage.knowledge`)."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from bot.admin.routes import PageSession, _check_post, _query, _render, _state, router
from bot.composition import add_document
from storage.knowledge import AlreadyThere, KnowledgeBase
from workers.decoding import shared_sandbox
from workers.documents import DocumentError

log = logging.getLogger(__name__)


def _knowledge(request: Request) -> KnowledgeBase:
    return KnowledgeBase(_state(request).log.engine)


@router.get("/knowledge", response_class=HTMLResponse)
def knowledge_page(request: Request, session: PageSession, added: str | None = None,
                   removed: str | None = None, error: str | None = None) -> HTMLResponse:
    state = _state(request)
    return _render(request, "knowledge.html", {
        "session": session, "documents": _knowledge(request).documents(),
        "mode": state.settings.knowledge_mode,
        "limit_mb": state.settings.knowledge_max_file_bytes // (1024 * 1024),
        "added": added, "removed": removed, "error": error})


@router.post("/knowledge")
async def upload_document(request: Request, session: PageSession) -> Response:
    state = _state(request)
    limit = state.settings.knowledge_max_file_bytes
    form = await request.form(max_files=1, max_fields=3, max_part_size=4096)
    _check_post(request, session, str(form.get("csrf") or ""))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return RedirectResponse("/admin/knowledge?" + _query(error="choose a file"), 303)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the file is over {limit // (1024 * 1024)} MB")
    title = str(form.get("title") or "").strip() or None
    try:
        row = await _in_thread(lambda: add_document(
            _knowledge(request), shared_sandbox(state.settings), state.settings, data,
            upload.filename, title=title, added_by=session.username))
    except (DocumentError, AlreadyThere) as exc:
        return RedirectResponse("/admin/knowledge?" + _query(error=str(exc)), 303)
    log.info("admin added knowledge document #%d (%d passages)", row.id, row.passages)
    return RedirectResponse("/admin/knowledge?" + _query(added=f"#{row.id} {row.title}"), 303)


async def _in_thread(call):  # type: ignore[no-untyped-def]
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call)


@router.post("/knowledge/{document_id}/delete")
async def remove_document(request: Request, document_id: int, session: PageSession) -> Response:
    form = await request.form(max_files=0, max_fields=2, max_part_size=4096)
    _check_post(request, session, str(form.get("csrf") or ""))
    row = _knowledge(request).remove(document_id)
    if row is None:
        raise HTTPException(404, "no such document")
    log.info("admin removed knowledge document #%d", row.id)
    return RedirectResponse("/admin/knowledge?" + _query(removed=f"#{row.id} {row.title}"), 303)


@router.get("/knowledge/{document_id}", response_class=HTMLResponse)
def document_page(request: Request, document_id: int, session: PageSession) -> HTMLResponse:
    found = _knowledge(request).document(document_id)
    if found is None:
        raise HTTPException(404, "no such document")
    document, passages = found
    return _render(request, "knowledge_document.html",
                   {"session": session, "document": document, "passages": passages})
