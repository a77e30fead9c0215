"""WhatsAppAdapter: the handshake, signatures, and parsing recorded webhook payloads."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from adapters.base import BadSignature, MissingSignature, PayloadError, SignatureError
from adapters.markup import markdown_to_whatsapp
from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.messages import MessageKind, Platform
from bot.kernel.settings import Settings
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
    assert message.reply_context.user_id == "SG.13491208655302741918"


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


@pytest.mark.parametrize("name", ["status_sent", "status_delivered", "status_read",
                                  "status_failed"])
def test_statuses_are_never_answered(adapter, name):
    assert parse(adapter, name) == []


def test_a_reaction_is_a_rating_not_a_message(adapter):
    [rating] = parse(adapter, "reaction")  # tests/adapters/test_feedback_adapters.py: the rest
    assert rating.kind == MessageKind.RATING and rating.text == "" and not rating.attachments


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


PHONE, BSUID, PARENT, NEW = "6591234567", "SG.1502576394655843", "SG.ENT.7730001122", "SG.22091"


def parse_body(adapter, body):
    return adapter.parse(json.dumps(body).encode())


def test_every_id_of_the_sender_is_carried(adapter):
    from tests.helpers.payloads import whatsapp_person

    [phone_only] = parse_body(adapter, whatsapp_person("a", phone=PHONE))
    assert phone_only.identities == (PHONE,) and phone_only.key.user_id == PHONE
    assert (phone_only.reply_context.to, phone_only.reply_context.user_id) == (PHONE, None)
    [both] = parse_body(adapter, whatsapp_person("b", phone=PHONE, bsuid=BSUID))
    assert both.identities == (BSUID, PHONE) and both.key.user_id == PHONE
    assert (both.reply_context.to, both.reply_context.user_id) == (PHONE, BSUID)
    [hidden] = parse_body(adapter, whatsapp_person("c", bsuid=BSUID, parent=PARENT))
    assert hidden.identities == (BSUID, PARENT) and hidden.key.user_id == BSUID
    assert (hidden.reply_context.to, hidden.reply_context.user_id) == (None, BSUID)
    assert hidden.user_name == "Siti" and hidden.text == "c"


def test_a_changed_user_id_is_a_link_never_answered(adapter):
    from tests.helpers.payloads import whatsapp_user_id_changed

    [link] = parse_body(adapter, whatsapp_user_id_changed(BSUID, NEW, previous_parent=PARENT,
                                                          parent=PARENT))
    assert link.kind == MessageKind.IDENTITY
    assert (link.previous_identities, link.identities) == ((BSUID, PARENT), (NEW, PARENT))
    body = whatsapp_user_id_changed(BSUID, NEW)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["system"]["type"] = "other_change"
    assert parse_body(adapter, body) == []


def test_ids_of_another_shape_are_not_identities(adapter):
    from tests.helpers.payloads import whatsapp_person

    [message] = parse_body(adapter, whatsapp_person("x", phone=PHONE, bsuid="SG.1:2"))
    assert message.identities == (PHONE,)
