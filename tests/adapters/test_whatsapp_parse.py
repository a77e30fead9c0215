"""WhatsAppAdapter: the handshake, signatures, and parsing recorded webhook payloads."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from adapters.base import BadSignature, MissingSignature, PayloadError, SignatureError
from adapters.markup import markdown_to_whatsapp
from adapters.whatsapp import WhatsAppAdapter
from bot.messages import MessageKind, Platform
from bot.settings import Settings
from tests.helpers.payloads import load


@pytest.fixture()
def adapter() -> WhatsAppAdapter:
    return WhatsAppAdapter(Settings(
        whatsapp_access_token="t", whatsapp_app_secret="app-secret", whatsapp_verify_token="vt",
        whatsapp_phone_number_id="106540352242922", redis_url="redis://127.0.0.1:1/0"))


def parse(adapter, name):
    return adapter.parse(json.dumps(load("whatsapp", name)).encode())


def test_handshake(adapter):
    ok = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert adapter.challenge(ok) == "1158201444"
    for bad in ({**ok, "hub.verify_token": "nope"}, {**ok, "hub.mode": "unsubscribe"},
                {"hub.challenge": "1"}):
        with pytest.raises(SignatureError) as raised:
            adapter.challenge(bad)
        assert raised.value.status_code == 403


def test_signature(adapter):
    body = b'{"entry": []}'
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    adapter.verify({"X-Hub-Signature-256": good}, body)
    with pytest.raises(MissingSignature):
        adapter.verify({}, body)
    with pytest.raises(BadSignature):
        adapter.verify({"X-Hub-Signature-256": good}, body + b" ")


def test_text_keys_the_user_by_wa_id(adapter):
    [message] = parse(adapter, "text")
    assert message.key.platform == Platform.WHATSAPP
    assert (message.key.bot_id, message.key.chat_id) == ("106540352242922", "6591234567")
    assert message.text == "Apa khabar? Boleh tolong saya?"
    assert message.event_id == message.message_id and message.event_id.startswith("wamid.")
    assert message.user_name == "Siti Rahman"
    assert message.reply_context["user_id"] == "SG.13491208655302741918"


def test_images_with_and_without_caption(adapter):
    [captioned] = parse(adapter, "image_caption")
    assert captioned.text == "Ini gambar apa?"
    assert captioned.attachments[0].ref == "1003383421387256"
    [bare] = parse(adapter, "image")
    assert bare.text == "" and len(bare.attachments) == 1


@pytest.mark.parametrize("name", ["sticker", "location", "unsupported"])
def test_unreadable_types_get_a_notice(adapter, name):
    [message] = parse(adapter, name)
    assert message.kind == MessageKind.UNSUPPORTED


@pytest.mark.parametrize("name", ["reaction", "status_sent", "status_delivered", "status_read",
                                  "status_failed"])
def test_statuses_and_reactions_are_never_answered(adapter, name):
    assert parse(adapter, name) == []


def test_two_messages_in_one_change(adapter):
    assert len(parse(adapter, "two_messages")) == 2


def test_malformed(adapter):
    for raw in (b"{", b"[]", b'{"object": "x"}'):
        with pytest.raises(PayloadError):
            adapter.parse(raw)


def test_whatsapp_formatting():
    assert markdown_to_whatsapp("**Nasi** *lemak* ~~old~~ `x`") == "*Nasi* _lemak_ ~old~ `x`"
    assert markdown_to_whatsapp("# Title\n\n- a\n- b") == "*Title*\n\n• a\n• b"
    assert markdown_to_whatsapp("[site](https://a.sg)") == "site (https://a.sg)"
