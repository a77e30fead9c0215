"""Documents sent in chat, as each platform's webhook carries them (#22): a Telegram `document`,
a LINE `file` message and a WhatsApp `document` become one DOCUMENT attachment (its id, its
name, its size where the platform says), checked against the vendored specs; a file the bot
does not read stays "unsupported" (a notice, never downloaded)."""

from __future__ import annotations

import copy
import json

import pytest

from adapters.line import LineAdapter
from adapters.telegram import TelegramAdapter
from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.messages import AttachmentKind, MessageKind, readable_document
from bot.kernel.settings import Settings
from tests.helpers.line_api import webhook_errors
from tests.helpers.payloads import load
from tests.helpers.specs import TELEGRAM_BOT_API
from tests.helpers.updates import text_update
from tests.helpers.whatsapp_api import validate_webhook

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def telegram_document(**fields) -> dict:
    update = text_update(5, "x")
    message = update["message"]
    message.pop("text")
    message["document"] = {"file_id": "doc-1", "file_unique_id": "u-doc-1", **fields}
    return update


def test_the_telegram_document_shape_is_the_bot_apis():
    spec = json.loads(TELEGRAM_BOT_API.read_text())["types"]["Document"]["fields"]
    known = {f["name"] for f in spec}
    required = {f["name"] for f in spec if f.get("required")}
    document = telegram_document(file_name="laporan.pdf", mime_type=PDF,
                                 file_size=2138)["message"]["document"]
    assert set(document) <= known and required <= set(document)


@pytest.mark.parametrize(("name", "mime"), [("laporan.pdf", PDF), ("surat.docx", DOCX),
                                            ("catatan.txt", "text/plain"), ("notes.md", None),
                                            (None, PDF)])
def test_a_telegram_document_the_bot_reads(name, mime):
    adapter = TelegramAdapter(Settings(telegram_bot_token="7000001:abc",
                                       telegram_webhook_secret="s" * 24,
                                       redis_url="redis://127.0.0.1:1/0"), username="b")
    fields = {k: v for k, v in (("file_name", name), ("mime_type", mime)) if v}
    update = telegram_document(file_size=2138, **fields)
    update["message"]["caption"] = "Ringkaskan dokumen ini"
    [message] = adapter.parse(json.dumps(update).encode())
    assert message.kind == MessageKind.CHAT and message.text == "Ringkaskan dokumen ini"
    [attachment] = message.attachments
    assert (attachment.kind, attachment.ref, attachment.size, attachment.name,
            attachment.mime_type) == (AttachmentKind.DOCUMENT, "doc-1", 2138, name, mime)


def test_a_telegram_file_of_another_kind_is_unsupported_and_a_long_name_is_cut():
    adapter = TelegramAdapter(Settings(telegram_bot_token="7000001:abc",
                                       redis_url="redis://127.0.0.1:1/0"), username="b")
    [zipped] = adapter.parse(json.dumps(telegram_document(
        file_name="a.zip", mime_type="application/zip")).encode())
    assert zipped.kind == MessageKind.UNSUPPORTED and not zipped.attachments
    [long] = adapter.parse(json.dumps(telegram_document(
        file_name="x" * 400 + ".pdf", mime_type=PDF)).encode())
    assert len(long.attachments[0].name) == 255


def test_a_line_file_message():
    body = load("line", "file")
    assert webhook_errors(body) == []  # LINE's FileMessageContent: fileName, fileSize
    adapter = LineAdapter(Settings(line_channel_secret="0" * 32, line_channel_access_token="t",
                                   redis_url="redis://127.0.0.1:1/0"))
    [message] = adapter.parse(json.dumps(body).encode())
    [attachment] = message.attachments
    assert message.kind == MessageKind.CHAT
    assert (attachment.kind, attachment.ref, attachment.name, attachment.size) == (
        AttachmentKind.DOCUMENT, "544318500000000005", "laporan.pdf", 2138)
    other = copy.deepcopy(body)
    other["events"][0]["message"]["fileName"] = "setup.exe"
    assert webhook_errors(other) == []
    [unsupported] = adapter.parse(json.dumps(other).encode())
    assert unsupported.kind == MessageKind.UNSUPPORTED and not unsupported.attachments


def test_a_whatsapp_document_message():
    body = load("whatsapp", "document")
    assert validate_webhook(body) == []  # the spec's DocumentMessage: filename, mime_type, id
    adapter = WhatsAppAdapter(Settings(
        whatsapp_access_token="t", whatsapp_app_secret="app-secret", whatsapp_verify_token="v",
        whatsapp_phone_number_id="106540352242922", redis_url="redis://127.0.0.1:1/0"))
    [message] = adapter.parse(json.dumps(body).encode())
    [attachment] = message.attachments
    assert message.kind == MessageKind.CHAT and message.text == "Tolong ringkas laporan ini"
    assert (attachment.kind, attachment.ref, attachment.name, attachment.mime_type) == (
        AttachmentKind.DOCUMENT, "1003383421387299", "laporan.pdf", PDF)
    sheet = copy.deepcopy(body)
    sheet["entry"][0]["changes"][0]["value"]["messages"][0]["document"].update(
        filename="budget.xlsx", mime_type="application/vnd.ms-excel")
    assert validate_webhook(sheet) == []
    [unsupported] = adapter.parse(json.dumps(sheet).encode())
    assert unsupported.kind == MessageKind.UNSUPPORTED and not unsupported.attachments


def test_which_files_are_read():
    assert readable_document("application/pdf; charset=binary", None)
    assert readable_document(None, "Report.PDF") and readable_document("", "a.docx")
    assert not readable_document("application/octet-stream", "a.xlsx")
    assert not readable_document(None, None) and not readable_document(None, "pdf")
