"""Hostile media through the real path (issue #12, holes 3, 4, 5, 6): webhook -> Redis -> Celery
worker -> stand-in API. Each one gets a polite "I couldn't read this image" in the person's
language, the turn finishes, and the next message in the same chat is answered."""

from __future__ import annotations

import pytest

from bot.kernel.texts import Text, text
from tests.conftest import new_chat_id
from tests.helpers.fetch_server import FetchServer
from tests.helpers.hostile_images import BOMB_PNG, POISON_WEBP
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import photo_update, text_update
from tests.helpers.waiting import wait_replies
from tests.test_line_end_to_end import new_user, wait_texts
from tests.test_whatsapp_end_to_end import new_wa_id
from tests.test_whatsapp_end_to_end import wait_texts as wait_whatsapp


def document_update(chat: int, file_id: str, mime_type: str, size: int) -> dict:
    """A photo sent "as a file" (a document), as people send full-resolution images."""
    update = photo_update(chat, caption=None)
    update["message"].pop("photo")
    update["message"]["document"] = {"file_id": file_id, "file_unique_id": f"u-{file_id}",
                                     "file_name": f"{file_id}.img", "mime_type": mime_type,
                                     "file_size": size}
    return update


@pytest.mark.parametrize("fixture, mime", [(POISON_WEBP, "image/webp"), (BOMB_PNG, "image/png")],
                         ids=["poison-webp", "bomb-png"])
def test_hostile_image_gets_a_polite_answer_and_the_chat_goes_on(qwen_service, telegram,
                                                                 fixture, mime):
    chat = new_chat_id()
    content = fixture.read_bytes()
    file_id = f"hostile-{chat}"
    telegram.add_file(file_id, content, file_path=f"documents/{fixture.name}")
    assert qwen_service.post_update(document_update(chat, file_id, mime,
                                                    len(content))).status_code == 200
    [notice] = wait_replies(telegram, chat, 1)
    assert notice.params["text"] == text(Text.IMAGE_UNREADABLE, "id")

    # The turn finished: the conversation is not locked, the next message is answered.
    assert qwen_service.post_update(text_update(chat, "Halo, apa kabar?")).status_code == 200
    replies = [c.params["text"] for c in wait_replies(telegram, chat, 2)]  # exactly two
    assert replies[0] == notice.params["text"] and replies[1].strip()


def test_line_external_provider_image_is_answered_without_fetching(qwen_service, line):
    user = new_user()
    with FetchServer() as elsewhere:
        body = line_event("image", user, reply_token=line.issue_reply_token(user))
        body["events"][0]["message"]["contentProvider"] = {
            "type": "external", "originalContentUrl": f"{elsewhere.base_url}/bytes/100",
            "previewImageUrl": f"{elsewhere.base_url}/bytes/10"}
        assert qwen_service.post_line(body).status_code == 200
        [notice] = wait_texts(line, user, 1)
        assert elsewhere.calls == []
    assert notice == text(Text.IMAGE_UNREADABLE, "en")
    assert line.calls_to("content") == []


def test_whatsapp_media_url_elsewhere_is_never_requested(qwen_service, whatsapp):
    """The Graph API's answer names an internal service: no request (so no token) reaches it;
    the person is told the image could not be read, and the chat goes on."""
    wa_id = new_wa_id()
    with FetchServer() as elsewhere:
        body = whatsapp_message("image", wa_id)
        media_id = body["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]
        whatsapp.add_media(media_id, b"\xff\xd8 bytes", url=f"{elsewhere.base_url}/bytes/100")
        assert qwen_service.post_whatsapp(body).status_code == 200
        [notice] = wait_whatsapp(whatsapp, wa_id, 1)
        assert elsewhere.calls == []
    assert notice == text(Text.IMAGE_UNREADABLE, "en")
    assert len(whatsapp.calls_to("media_info")) == 1 and whatsapp.calls_to("media_download") == []
    assert qwen_service.post_whatsapp(whatsapp_message("text", wa_id)).status_code == 200
    assert wait_whatsapp(whatsapp, wa_id, 2)[1].strip()
