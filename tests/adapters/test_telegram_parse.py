"""TelegramAdapter.verify and .parse: pure functions over recorded payloads."""

from __future__ import annotations

import json

import pytest

from adapters.base import BadSignature, MissingSignature, PayloadError
from adapters.telegram import TelegramAdapter
from bot.kernel.messages import MessageKind, Platform
from bot.kernel.settings import Settings
from tests.helpers.payloads import DATA
from tests.helpers.specs import SPECS
from tests.helpers.updates import group_update, load, photo_update, sticker_update, text_update


@pytest.fixture()
def adapter() -> TelegramAdapter:
    settings = Settings(telegram_bot_token="7000001:abc", telegram_webhook_secret="s" * 24,
                        redis_url="redis://127.0.0.1:1/0")
    return TelegramAdapter(settings, username="sealion_test_bot")


def body(update: dict) -> bytes:
    return json.dumps(update).encode()


def test_verify(adapter):
    adapter.verify({"X-Telegram-Bot-Api-Secret-Token": "s" * 24}, b"{}")
    with pytest.raises(MissingSignature):
        adapter.verify({}, b"{}")
    with pytest.raises(BadSignature):
        adapter.verify({"X-Telegram-Bot-Api-Secret-Token": "s" * 23 + "x"}, b"{}")


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"message": {}}', b"\xff\xfe", b'{"update_id": "1"}'])
def test_malformed_bodies(adapter, raw):
    with pytest.raises(PayloadError):
        adapter.parse(raw)


def test_private_text(adapter):
    [message] = adapter.parse(body(load("text_private")))
    assert message.key.platform == Platform.TELEGRAM
    assert (message.key.bot_id, message.key.chat_id, message.key.user_id) == \
        ("7000001", "424242", "424242")
    assert message.event_id == "100000001" and message.message_id == "11"
    assert message.text == "Apa khabar? Boleh tolong saya?"
    assert message.language_hint == "ms" and message.user_name == "Siti Rahman"
    assert message.kind == MessageKind.CHAT and message.attachments == ()


def test_photo_picks_the_largest_size_within_budget(adapter):
    [message] = adapter.parse(body(photo_update(5, caption="Ini apa?")))
    [attachment] = message.attachments
    assert attachment.ref == "photo-large" and (attachment.width, attachment.height) == (1280, 960)
    assert message.text == "Ini apa?"


def test_image_document_and_other_documents(adapter):
    update = text_update(5, "x")
    message = update["message"]
    message.pop("text")
    message["document"] = {"file_id": "d1", "file_unique_id": "u", "mime_type": "image/png",
                           "file_size": 10}
    [parsed] = adapter.parse(body(update))
    assert parsed.attachments[0].ref == "d1" and parsed.kind == MessageKind.CHAT
    message["document"]["mime_type"] = "application/zip"
    [parsed] = adapter.parse(body(update))
    assert parsed.kind == MessageKind.UNSUPPORTED  # a file the bot does not read


def test_sticker_is_unsupported_and_edits_are_ignored(adapter):
    [sticker] = adapter.parse(body(sticker_update(9)))
    assert sticker.kind == MessageKind.UNSUPPORTED and sticker.language_hint == "th"
    assert adapter.parse(body(load("edited_message"))) == []
    assert adapter.parse(body(load("callback_query"))) == []


def test_group_needs_a_mention_a_reply_or_a_command(adapter):
    chat = -100777
    assert adapter.parse(body(group_update(chat, "just chatting"))) == []
    text = "hey @SeaLion_Test_Bot what is laksa?"
    [mentioned] = adapter.parse(body(group_update(chat, text, entities=[
        {"type": "mention", "offset": 4, "length": 17}])))
    # The mention is cut out and every other word stays, in order (the gap it leaves aside).
    assert mentioned.text.split() == ["hey", "what", "is", "laksa?"]
    assert mentioned.key.user_id == ""  # one conversation for the whole group
    [command] = adapter.parse(body(group_update(chat, "/reset@sealion_test_bot", entities=[
        {"type": "bot_command", "offset": 0, "length": 23}])))
    assert command.text == "/reset"
    assert adapter.parse(body(group_update(chat, "/reset@other_bot", entities=[
        {"type": "bot_command", "offset": 0, "length": 16}]))) == []
    other_mention = group_update(chat, "@someone_else hi", entities=[
        {"type": "mention", "offset": 0, "length": 13}])
    assert adapter.parse(body(other_mention)) == []


def test_bot_added_to_a_group_greets(adapter):
    update = group_update(-100888, "x")
    update["message"].pop("text")
    update["message"]["new_chat_members"] = [{"id": 7000001, "is_bot": True,
                                              "first_name": "SEA-LION"}]
    [greeting] = adapter.parse(body(update))
    assert greeting.kind == MessageKind.GREETING


def test_updates_newer_than_the_vendored_spec_are_silent(adapter):
    """Bot API 10.2's `subscription` update (aiogram's recorded one) and any update kind yet to
    come are answered 200 with nothing: no message, no error."""
    recorded = (DATA / "telegram/corpus/aiogram/update_26_subscription.json").read_bytes()
    vendored = json.loads((SPECS / "telegram/bot-api.json").read_text())
    assert "subscription" not in {f["name"] for f in vendored["types"]["Update"]["fields"]}
    assert adapter.parse(recorded) == []
    future = {"update_id": 7, "some_update_of_bot_api_11": {"user": {"id": 1}, "state": "new"}}
    assert adapter.parse(body(future)) == []
