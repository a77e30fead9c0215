"""LineAdapter: signatures and parsing of the recorded webhook payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from adapters.base import PayloadError, SignatureError
from adapters.line import LineAdapter
from adapters.markup import markdown_to_plain
from bot.kernel.messages import MessageKind, Platform
from bot.kernel.settings import Settings
from tests.helpers.payloads import DATA, load

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture()
def adapter() -> LineAdapter:
    return LineAdapter(Settings(line_channel_secret=SECRET, line_channel_access_token="t",
                                redis_url="redis://127.0.0.1:1/0"))


def parse(adapter, name):
    return adapter.parse(json.dumps(load("line", name)).encode())


def test_signature(adapter):
    body = json.dumps(load("line", "text")).encode()
    good = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    adapter.verify({"X-Line-Signature": good}, body)
    with pytest.raises(SignatureError) as missing:
        adapter.verify({}, body)
    with pytest.raises(SignatureError) as forged:
        adapter.verify({"X-Line-Signature": good}, body.replace(b"}", b" }", 1))
    assert missing.value.status_code == 401 and forged.value.status_code == 400


def test_text_from_a_user(adapter):
    body = load("line", "text")
    [message] = parse(adapter, "text")
    event = body["events"][0]
    assert message.key.platform == Platform.LINE
    assert message.key.bot_id == body["destination"]
    assert message.key.chat_id == message.key.user_id == event["source"]["userId"]
    assert message.event_id == event["webhookEventId"]
    assert message.text == event["message"]["text"]
    assert message.reply_context.reply_token == event["replyToken"]
    assert message.reply_context.reply_token_expires_at == pytest.approx(
        event["timestamp"] / 1000 + 50)


def test_images_and_image_sets(adapter):
    [single] = parse(adapter, "image")
    assert single.attachments[0].ref == load("line", "image")["events"][0]["message"]["id"]
    [first] = parse(adapter, "image_set_1")
    [second] = parse(adapter, "image_set_2")
    assert first.album_id and first.album_id == second.album_id


@pytest.mark.parametrize("name", ["sticker", "video", "location"])
def test_unreadable_messages_get_a_notice(adapter, name):
    [message] = parse(adapter, name)
    assert message.kind == MessageKind.UNSUPPORTED


def test_follow_and_join_greet_unfollow_and_leave_do_not(adapter):
    [follow] = parse(adapter, "follow")
    [join] = parse(adapter, "join")
    assert follow.kind == join.kind == MessageKind.GREETING
    assert join.key.user_id == "" and join.key.chat_id.startswith("C")
    assert parse(adapter, "unfollow") == [] and parse(adapter, "leave") == []


def test_groups_need_a_mention_of_the_bot(adapter):
    assert parse(adapter, "group_no_mention") == []
    [message] = parse(adapter, "group_mention")
    assert message.text == "tolong ringkaskan pesan @Budi di atas"
    assert message.key.user_id == "" and message.reply_context.private is False


def test_verify_button_and_malformed_bodies(adapter):
    assert parse(adapter, "verify") == []
    for raw in (b"{", b"[]", b'{"destination": "x"}'):
        with pytest.raises(PayloadError):
            adapter.parse(raw)


def test_markdown_is_stripped_for_line():
    assert markdown_to_plain("**Nasi** _lemak_ `x` [a](https://a.sg)") == \
        "Nasi lemak x a (https://a.sg)"


def corpus(source: str, name: str) -> bytes:
    return (DATA / "line" / "corpus" / source / f"{name}.json").read_bytes()


def test_standby_events_are_never_answered(adapter):
    """Another module holds the chat: LINE says the standby bot sends nothing, greeting or not."""
    assert adapter.parse(corpus("line-bot-sdk-go", "27_message_text_standby")) == []
    for name in ("text", "follow", "sticker"):
        body = load("line", name)
        body["events"][0]["mode"] = "standby"
        assert adapter.parse(json.dumps(body).encode()) == [], name
    [active] = parse(adapter, "text")  # the same event in active mode is read
    assert active.text


def test_the_mark_as_read_token_rides_with_the_reply_context(adapter):
    [message] = parse(adapter, "text")
    token = load("line", "text")["events"][0]["message"]["markAsReadToken"]
    assert message.reply_context.mark_as_read_token == token
    [greeting] = parse(adapter, "follow")  # no message: nothing to mark
    assert greeting.reply_context.mark_as_read_token is None
