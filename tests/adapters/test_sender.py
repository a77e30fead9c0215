"""Every inbound message names its sender, in groups too, where the conversation key does not
(issue #12, hole 9: deleting a person finds their group messages by it)."""

from __future__ import annotations

import json

from adapters.line import LineAdapter
from adapters.telegram import TelegramAdapter
from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.settings import Settings
from tests.helpers.payloads import load

SETTINGS = Settings(_env_file=None, telegram_bot_token="7000001:secret",
                    line_channel_secret="0123456789abcdef0123456789abcdef",
                    line_channel_access_token="t", whatsapp_access_token="t",
                    whatsapp_app_secret="s", whatsapp_phone_number_id="106540352242922")


def parse(adapter, platform: str, name: str, edit=None):
    body = load(platform, name)
    if edit is not None:
        edit(body)
    return adapter.parse(json.dumps(body).encode())


def test_telegram_group_message_names_its_sender():
    def mention(update):
        message = update["message"]
        message["text"] = "@sealion_test_bot " + message["text"]
        message["entities"] = [{"type": "mention", "offset": 0,
                                "length": len("@sealion_test_bot")}]

    adapter = TelegramAdapter(SETTINGS, username="sealion_test_bot")
    [message] = parse(adapter, "telegram", "group_text", mention)
    assert message.key.user_id == "" and message.key.chat_id == "-1001234567"
    assert message.sender_id == "515151"
    [private] = parse(adapter, "telegram", "text_private")
    assert private.sender_id == private.key.user_id != ""


def test_line_group_message_names_its_sender():
    adapter = LineAdapter(SETTINGS)
    [message] = parse(adapter, "line", "group_mention")
    assert message.key.user_id == "" and message.key.chat_id.startswith("C")
    assert message.sender_id == "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"
    [private] = parse(adapter, "line", "text")
    assert private.sender_id == private.key.user_id != ""


def test_whatsapp_message_names_its_sender():
    adapter = WhatsAppAdapter(SETTINGS)
    messages = parse(adapter, "whatsapp", "two_messages")
    assert messages and all(m.sender_id == m.key.user_id != "" for m in messages)
