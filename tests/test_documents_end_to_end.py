"""Documents sent in chat, end to end (#22): a Telegram `document`, a LINE `file` and a WhatsApp
`document` go webhook -> Redis -> the Celery worker -> the platform's download (its stand-in,
under the fetch policy) -> the decode sandbox's processes (pdfium) -> the OpenAI-compatible
model, whose stand-in records each request -> the platform stand-in.

On each platform: a PDF with a text layer reaches the model's request as text, a scanned PDF as
page images, and the next message's request still carries the document from the history. An
encrypted file gets the note in the person's language, and the chat goes on. Every fixture is
made here (tests/helpers/documents.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.kernel.texts import Text, text
from tests.conftest import new_chat_id
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.documents import docx_file, encrypted_pdf, scanned_pdf, text_pdf
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import text_update
from tests.helpers.waiting import wait_replies, wait_until
from tests.test_line_end_to_end import new_user
from tests.test_line_end_to_end import wait_texts as wait_line
from tests.test_whatsapp_end_to_end import new_wa_id
from tests.test_whatsapp_end_to_end import wait_texts as wait_whatsapp

ANSWER = "The document is a clinic's handbook."
LANGUAGES = ("en", "id", "ms", "tl", "th", "vi", "ta", "my", "km", "lo", "zh")
_files = itertools.count(1)
PDF = "application/pdf"


@pytest.fixture(scope="module")
def chat_model():
    stand_in = ChatStandIn(answer=ANSWER).start()
    yield stand_in
    stand_in.stop()
    assert stand_in.spec_errors == [], stand_in.spec_errors


@pytest.fixture(scope="module")
def document_service(deploy, chat_model):
    return deploy("qwen3_vl", MODEL_BACKEND="openai", OPENAI_BASE_URL=chat_model.v1,
                  OPENAI_MODEL=chat_model.model, REPLY_LANGUAGE_CHECK="false",
                  BUSY_NOTICE_SECONDS="0", DOCUMENT_MAX_PAGES="2")


def pages(marker: str) -> list[str]:
    """Two pages whose words name the test (so each request is found by them)."""
    return [f"Handbook {marker}: the clinic opens at eight in the morning.",
            f"Handbook {marker}: dental care costs 300 baht a visit."]


def parts(message: dict) -> tuple[str, int]:
    """A request message's text and its number of images."""
    content = message.get("content")
    if isinstance(content, str):
        return content, 0
    texts = [p.get("text", "") for p in content if p.get("type") == "text"]
    return "\n".join(texts), sum(1 for p in content if p.get("type") == "image_url")


def request_with(chat_model: ChatStandIn, needle: str, *, last: bool = True,
                 timeout: float = 60) -> list[dict]:
    """The messages of the first chat request whose last (or any) user message holds
    `needle`."""

    def found() -> list[dict] | None:
        for call in list(chat_model.calls):
            if call.name != "chat" or not isinstance(call.body, dict):
                continue
            messages = [m for m in call.body.get("messages", []) if m.get("role") == "user"]
            if not messages:
                continue
            pool = messages[-1:] if last else messages
            if any(needle in parts(m)[0] for m in pool):
                return call.body["messages"]
        return None

    return wait_until(found, timeout, f"a model request holding {needle!r}")


# ------------------------------------------------------------------------------ per platform
def send_telegram(service, telegram, chat: int, data: bytes, name: str, mime: str | None,
                  caption: str | None = None) -> None:
    file_id = f"doc-{next(_files)}-{chat}"
    telegram.add_file(file_id, data, file_path=f"documents/{file_id}.pdf")
    update = text_update(chat, "x")
    message = update["message"]
    message.pop("text")
    message["document"] = {"file_id": file_id, "file_unique_id": f"u-{file_id}",
                           "file_name": name, "file_size": len(data),
                           **({"mime_type": mime} if mime else {})}
    if caption:
        message["caption"] = caption
    assert service.post_update(update).status_code == 200


def send_line(service, line, user: str, data: bytes, name: str) -> None:
    body = line_event("file", user, reply_token=line.issue_reply_token(user), fileName=name,
                      fileSize=len(data))
    line.add_content(body["events"][0]["message"]["id"], data, content_type=PDF)
    assert service.post_line(body).status_code == 200


def send_whatsapp(service, whatsapp, wa_id: str, data: bytes, name: str,
                  caption: str | None = None) -> None:
    media_id = f"{next(_files)}{wa_id[-6:]}77"
    whatsapp.add_media(media_id, data, mime_type=PDF)
    document: dict[str, Any] = {"id": media_id, "filename": name, "mime_type": PDF}
    if caption:
        document["caption"] = caption
    body = whatsapp_message("document", wa_id, document=document)
    if not caption:
        body["entry"][0]["changes"][0]["value"]["messages"][0]["document"].pop("caption")
    assert service.post_whatsapp(body).status_code == 200


def note(key: Text) -> set[str]:
    """The note in any language (the turn chooses it from the words and the platform's
    hint; the unit tests check the choice)."""
    return {text(key, language) for language in LANGUAGES}


def follow_up_telegram(service, telegram, chat: int, words: str) -> None:
    assert service.post_update(text_update(chat, words)).status_code == 200


# ------------------------------------------------------------------------------ Telegram
def test_telegram_pdf_reaches_the_model_as_text_and_the_next_question_sees_it(
        document_service, telegram, chat_model):
    chat = new_chat_id()
    marker = f"T{chat}"
    send_telegram(document_service, telegram, chat, text_pdf(pages(marker)), "handbook.pdf",
                  PDF)
    [reply] = wait_replies(telegram, chat, 1, timeout=120)
    assert reply.params["text"] == ANSWER
    messages = request_with(chat_model, f"[page 2] {pages(marker)[1]}")
    words, images = parts(messages[-1])
    assert words.startswith('[file "handbook.pdf", 2 pages]') and images == 0

    follow_up_telegram(document_service, telegram, chat, f"{marker}: what does page 2 say?")
    wait_replies(telegram, chat, 2, timeout=120)
    later = request_with(chat_model, f"{marker}: what does page 2 say?")
    earlier = [parts(m)[0] for m in later if m.get("role") == "user"][:-1]
    assert any(f"[page 2] {pages(marker)[1]}" in w for w in earlier)


def test_telegram_scan_reaches_the_model_as_page_images(document_service, telegram,
                                                        chat_model):
    chat = new_chat_id()
    marker = f"scan T{chat}"
    send_telegram(document_service, telegram, chat, scanned_pdf(pages=3), "surat.pdf", None,
                  caption=f"{marker}: what is this letter?")
    replies = wait_replies(telegram, chat, 2, timeout=120)
    # DOCUMENT_MAX_PAGES=2 of 3 pages: the note that it was cut, then the answer.
    assert replies[0].params["text"] in note(Text.DOCUMENT_CUT)
    assert replies[1].params["text"] == ANSWER
    words, images = parts(request_with(chat_model, marker)[-1])
    assert images == 2 and "[scanned pages, as images: 1, 2]" in words

    follow_up_telegram(document_service, telegram, chat, f"{marker}: and page 2?")
    wait_replies(telegram, chat, 3, timeout=120)
    later = request_with(chat_model, f"{marker}: and page 2?")
    assert sum(parts(m)[1] for m in later) >= 2  # the pages, from the history


def test_telegram_docx_and_an_encrypted_pdf(document_service, telegram, chat_model):
    chat = new_chat_id()
    marker = f"docx T{chat}"
    data = docx_file("Handbook", [("Opening hours", [f"{marker} opens at eight."])])
    send_telegram(document_service, telegram, chat, data, "handbook.docx", None)
    wait_replies(telegram, chat, 1, timeout=120)
    words, _ = parts(request_with(chat_model, f"{marker} opens at eight.")[-1])
    assert "## Opening hours" in words

    other = new_chat_id()
    send_telegram(document_service, telegram, other, encrypted_pdf(), "results.pdf", PDF,
                  caption="Boleh semak keputusan makmal saya ini?")
    replies = wait_replies(telegram, other, 2, timeout=120)
    assert replies[0].params["text"] in note(Text.DOCUMENT_ENCRYPTED)
    assert replies[1].params["text"] == ANSWER  # the words are answered all the same
    follow_up_telegram(document_service, telegram, other, "Terima kasih, saya hantar semula.")
    wait_replies(telegram, other, 3, timeout=120)  # the chat goes on


# ------------------------------------------------------------------------------ LINE
def test_line_pdf_file_reaches_the_model_as_text_and_stays_in_the_history(
        document_service, line, chat_model):
    user = new_user()
    marker = f"L{user[-8:]}"
    send_line(document_service, line, user, text_pdf(pages(marker)), "handbook.pdf")
    [answer] = wait_line(line, user, 1, timeout=120)
    assert answer == ANSWER and len(line.calls_to("content")) == 1
    words, images = parts(request_with(chat_model, f"[page 1] {pages(marker)[0]}")[-1])
    assert words.startswith('[file "handbook.pdf", 2 pages]') and images == 0

    body = line_event("text", user, reply_token=line.issue_reply_token(user),
                      text=f"{marker}: what does page 2 say?")
    assert document_service.post_line(body).status_code == 200
    wait_line(line, user, 2, timeout=120)
    later = request_with(chat_model, f"{marker}: what does page 2 say?")
    assert any(f"[page 2] {pages(marker)[1]}" in parts(m)[0] for m in later[:-1])


def test_line_scanned_pdf_reaches_the_model_as_an_image(document_service, line, chat_model):
    user = new_user()
    send_line(document_service, line, user, scanned_pdf(pages=1), f"scan-{user[-8:]}.pdf")
    wait_line(line, user, 1, timeout=120)
    words, images = parts(request_with(chat_model, f'[file "scan-{user[-8:]}.pdf", 1 pages]'
                                       )[-1])
    assert images == 1 and "[scanned pages, as images: 1]" in words


# ------------------------------------------------------------------------------ WhatsApp
def test_whatsapp_pdf_document_reaches_the_model_as_text_and_stays_in_the_history(
        document_service, whatsapp, chat_model):
    wa_id = new_wa_id()
    marker = f"W{wa_id}"
    send_whatsapp(document_service, whatsapp, wa_id, text_pdf(pages(marker)), "handbook.pdf",
                  caption=f"{marker}: summarise this")
    [answer] = wait_whatsapp(whatsapp, wa_id, 1, timeout=120)
    assert answer == ANSWER
    assert whatsapp.calls_to("media_info") and whatsapp.calls_to("media_download")
    words, images = parts(request_with(chat_model, f"{marker}: summarise this")[-1])
    assert f"[page 2] {pages(marker)[1]}" in words and images == 0

    body = whatsapp_message("text", wa_id, text={"body": f"{marker}: what does page 2 say?"})
    assert document_service.post_whatsapp(body).status_code == 200
    wait_whatsapp(whatsapp, wa_id, 2, timeout=120)
    later = request_with(chat_model, f"{marker}: what does page 2 say?")
    assert any(f"[page 2] {pages(marker)[1]}" in parts(m)[0] for m in later[:-1])


def test_whatsapp_scanned_pdf_reaches_the_model_as_images(document_service, whatsapp,
                                                          chat_model):
    wa_id = new_wa_id()
    marker = f"scan W{wa_id}"
    send_whatsapp(document_service, whatsapp, wa_id, scanned_pdf(pages=2), "surat.pdf",
                  caption=f"{marker}: apa isi surat ini?")
    wait_whatsapp(whatsapp, wa_id, 1, timeout=120)
    words, images = parts(request_with(chat_model, marker)[-1])
    assert images == 2 and "[scanned pages, as images: 1, 2]" in words


# ------------------------------------------------------------------------------ local channels
def test_web_chat_sends_a_document_to_read_and_refuses_other_files(document_service,
                                                                   chat_model):
    """The /chat page's file field takes a PDF as a document (read like the platforms'), a
    photo as before, and refuses anything else with 415 before storing it."""
    from fastapi.testclient import TestClient

    from bot.web.app import create_app

    app = create_app(document_service.settings.model_copy(update={"web_chat": True}))
    client = TestClient(app, base_url="http://localhost:8080", client=("127.0.0.1", 40000))
    assert client.get("/chat").status_code == 200  # sets the conversation cookie
    marker = f"WEB{new_chat_id()}"
    sent = client.post("/chat/api/messages", data={"text": f"{marker}: what is this?"},
                       files={"file": ("handbook.pdf", text_pdf(pages(marker)), PDF)})
    assert sent.status_code == 202, sent.text
    words, images = parts(request_with(chat_model, f"{marker}: what is this?")[-1])
    assert '[file "handbook.pdf", 2 pages]' in words and images == 0
    assert f"[page 2] {pages(marker)[1]}" in words

    def answered() -> bool:
        events = client.get("/chat/api/events", params={"wait": "2"}).json()["events"]
        return any(e["type"] == "message" and e["text"] == ANSWER for e in events)

    wait_until(answered, 60, "the answer on the page's outbox")
    refused = client.post("/chat/api/messages", data={"text": "hi"},
                          files={"file": ("notes.zip", b"PK\x03\x04", "application/zip")})
    assert refused.status_code == 415 and "documents" in refused.json()["detail"]


def test_the_terminal_sends_a_document_with_file(document_service, chat_model, tmp_path):
    """`sealion-bot chat`'s /file PATH [question]: the document reaches the model as text and
    the answer is printed; a file of another kind is refused before it is uploaded."""
    from bot.cli.console import ConsoleChat
    from bot.composition import Services

    marker = f"TERM{new_chat_id()}"
    handbook = tmp_path / "clinic handbook.pdf"
    handbook.write_bytes(text_pdf(pages(marker)))
    (tmp_path / "notes.zip").write_bytes(b"PK\x03\x04")
    said: list[str] = []
    services = Services(document_service.settings)
    try:
        session = ConsoleChat(services, f"terminal-{marker}", said.append, timeout=120)
        assert session.send_line(f"/file {handbook} {marker}: summarise it"), said
        assert f"sealion> {ANSWER}" in said
        words, _ = parts(request_with(chat_model, f"{marker}: summarise it")[-1])
        assert '[file "clinic handbook.pdf", 2 pages]' in words
        assert f"[page 1] {pages(marker)[0]}" in words
        assert not session.send_line(f"/file {tmp_path / 'notes.zip'}")
        assert said[-1] == ("notes.zip: only PDF, Word (.docx), text, Markdown and HTML files "
                            "are read")
    finally:
        services.close()
