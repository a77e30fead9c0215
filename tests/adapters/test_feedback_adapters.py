"""👍/👎 on answers, per adapter (#23): the buttons each platform sends under an answer, checked
by the stand-ins against the vendored specs (Telegram's inline keyboard, LINE's quick reply of
postback actions, WhatsApp's interactive reply buttons), the platform message ids of the sent
parts handed to the delivery log, and the webhooks' ratings parsed (callback_query,
message_reaction, postback, button_reply, reaction), none of them a chat message."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from adapters.feedback import reaction_value
from adapters.line import LineAdapter
from adapters.telegram import ALLOWED_UPDATES, TelegramAdapter
from adapters.whatsapp import INTERACTIVE_BODY_LIMIT, WhatsAppAdapter
from bot.kernel.messages import (
    ConversationKey,
    InboundMessage,
    LineContext,
    MessageKind,
    Platform,
    Rating,
    RatingSource,
    Reply,
    WhatsAppContext,
    feedback_data,
)
from bot.kernel.settings import Settings
from tests.conftest import LINE_TOKEN, TELEGRAM_TOKEN, WHATSAPP_PHONE_ID, WHATSAPP_TOKEN
from tests.helpers.payloads import load

TURN = "0123456789abcdef0123456789abcdef"
SETTINGS = Settings(_env_file=None, telegram_bot_token="7000001:secret",
                    line_channel_secret="0123456789abcdef0123456789abcdef",
                    line_channel_access_token="t", whatsapp_access_token="t",
                    whatsapp_app_secret="s", whatsapp_phone_number_id="106540352242922")


class IdLog:
    """A delivery log in memory that keeps the message ids the adapter reports."""

    def __init__(self) -> None:
        self.ids: dict[int, str | None] = {}

    def is_sent(self, part: int) -> bool:
        return part in self.ids

    def mark_sent(self, part: int, message_id: str | None = None) -> None:
        self.ids[part] = message_id


def _body(data) -> bytes:
    return json.dumps(data).encode()


# ---------------------------------------------------------------------------- parsing (unit)
def test_reaction_emoji_meanings():
    assert reaction_value("👍") == reaction_value("❤️") == reaction_value("❤") == 1
    assert reaction_value("👎") == reaction_value("👎🏽") == -1
    assert reaction_value("") == reaction_value(None) == 0
    assert reaction_value("🤔") is None


def test_feedback_data_fits_telegram_callback_data():
    assert len(feedback_data(-1, TURN).encode()) <= 64


def test_telegram_callback_query_is_a_rating():
    update = load("telegram", "callback_query")
    update["callback_query"]["data"] = feedback_data(-1, TURN)
    update["callback_query"]["message"] = {"message_id": 77, "date": 1763780000,
                                           "chat": {"id": 424242, "type": "private"}}
    [message] = TelegramAdapter(SETTINGS).parse(_body(update))
    assert message.kind is MessageKind.RATING and message.text == ""
    assert message.key.chat_id == message.key.user_id == "424242"
    assert message.event_id == "100000006"
    assert message.rating == Rating(value=-1, source=RatingSource.BUTTON, turn_id=TURN,
                                    message_id="77", callback_id="4382bfdwdsb323b2d9")


def test_telegram_other_callbacks_are_not_ratings():
    update = load("telegram", "callback_query")  # data "button-1", no message
    assert TelegramAdapter(SETTINGS).parse(_body(update)) == []
    update["callback_query"]["message"] = {"message_id": 77, "date": 0,
                                           "chat": {"id": 424242, "type": "private"}}
    assert TelegramAdapter(SETTINGS).parse(_body(update)) == []


def _reaction(new: list[dict], chat_type: str = "private") -> dict:
    chat_id = 424242 if chat_type == "private" else -1001234567
    return {"update_id": 100000009, "message_reaction": {
        "chat": {"id": chat_id, "type": chat_type}, "message_id": 78,
        "user": {"id": 424242, "is_bot": False, "first_name": "Siti"}, "date": 1763780001,
        "old_reaction": [], "new_reaction": new}}


@pytest.mark.parametrize(("new", "value"), [
    ([{"type": "emoji", "emoji": "👍"}], 1), ([{"type": "emoji", "emoji": "❤"}], 1),
    ([{"type": "emoji", "emoji": "👎"}], -1), ([], 0)])
def test_telegram_message_reaction_is_a_rating(new, value):
    [message] = TelegramAdapter(SETTINGS).parse(_body(_reaction(new)))
    assert message.kind is MessageKind.RATING
    assert message.rating == Rating(value=value, source=RatingSource.REACTION, message_id="78")
    assert message.key.user_id == "424242"


def test_telegram_reactions_that_rate_nothing():
    adapter = TelegramAdapter(SETTINGS)
    assert adapter.parse(_body(_reaction([{"type": "emoji", "emoji": "🤔"}]))) == []
    assert adapter.parse(_body(_reaction([{"type": "custom_emoji",
                                           "custom_emoji_id": "5368324170671202286"}]))) == []
    assert adapter.parse(_body(_reaction([{"type": "emoji", "emoji": "👍"},
                                          {"type": "emoji", "emoji": "👎"}]))) == []
    [group] = adapter.parse(_body(_reaction([{"type": "emoji", "emoji": "👍"}], "supergroup")))
    assert group.key.user_id == "" and group.sender_id == "424242"


def test_telegram_asks_for_the_rating_updates():
    assert set(ALLOWED_UPDATES) == {"message", "callback_query", "message_reaction"}


def _postback(data: str) -> dict:
    return {"destination": "U" + "0" * 32, "events": [{
        "type": "postback", "mode": "active", "timestamp": 1763780000000,
        "webhookEventId": "01HEVENTPOSTBACK000000000", "replyToken": "r" * 32,
        "deliveryContext": {"isRedelivery": False},
        "source": {"type": "user", "userId": "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"},
        "postback": {"data": data}}]}


def test_line_postback_is_a_rating():
    [message] = LineAdapter(SETTINGS).parse(_body(_postback(feedback_data(1, TURN))))
    assert message.kind is MessageKind.RATING
    assert message.rating == Rating(value=1, source=RatingSource.BUTTON, turn_id=TURN)
    assert message.event_id == "01HEVENTPOSTBACK000000000"
    assert message.key.user_id == "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"
    assert LineAdapter(SETTINGS).parse(_body(_postback("action=buy&itemid=1"))) == []


def test_line_postback_event_matches_the_spec():
    from tests.helpers.line_api import webhook_errors

    assert webhook_errors(_postback(feedback_data(1, TURN))) == []


def _whatsapp(edit) -> bytes:
    body = load("whatsapp", "reaction")
    edit(body["entry"][0]["changes"][0]["value"]["messages"][0])
    return _body(body)


def test_whatsapp_reaction_is_a_rating():
    adapter = WhatsAppAdapter(SETTINGS)
    [message] = adapter.parse(_body(load("whatsapp", "reaction")))
    assert message.kind is MessageKind.RATING
    assert message.rating == Rating(
        value=1, source=RatingSource.REACTION,
        message_id="wamid.HBgKNjU5MTIzNDU2NxUCABEYEjBGMUUyRDNDNEI1QTY5Nzg4NwA=")
    assert message.key.user_id == "6591234567" and message.identities == ("6591234567",)

    def removed(m):
        m["reaction"].pop("emoji")

    [gone] = adapter.parse(_whatsapp(removed))
    assert gone.rating is not None and gone.rating.value == 0

    def thinking(m):
        m["reaction"]["emoji"] = "🤔"

    assert adapter.parse(_whatsapp(thinking)) == []


def test_whatsapp_button_reply_is_a_rating():
    def button(m):
        del m["reaction"]
        m.update(type="interactive", context={"from": "15550783881", "id": "wamid.ANSWER"},
                 interactive={"type": "button_reply",
                              "button_reply": {"id": feedback_data(-1, TURN), "title": "👎"}})

    [message] = WhatsAppAdapter(SETTINGS).parse(_whatsapp(button))
    assert message.kind is MessageKind.RATING
    assert message.rating == Rating(value=-1, source=RatingSource.BUTTON, turn_id=TURN,
                                    message_id="wamid.ANSWER")


def test_whatsapp_rating_events_match_the_spec():
    from tests.helpers.whatsapp_api import validate_webhook

    def button(m):
        del m["reaction"]
        m.update(type="interactive", context={"from": "15550783881", "id": "wamid.ANSWER"},
                 interactive={"type": "button_reply",
                              "button_reply": {"id": feedback_data(-1, TURN), "title": "👎"}})

    assert validate_webhook(load("whatsapp", "reaction")) == []
    assert validate_webhook(json.loads(_whatsapp(button))) == []


# -------------------------------------------------------------- sending (stand-ins, specs)
def _run(adapter, coroutine_factory):
    async def run():
        try:
            return await coroutine_factory()
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def _telegram(telegram) -> TelegramAdapter:
    return TelegramAdapter(Settings(_env_file=None, telegram_bot_token=TELEGRAM_TOKEN,
                                    telegram_api_base_url=telegram.base_url))


def test_telegram_answer_carries_the_keyboard_on_its_last_part(telegram):
    adapter = _telegram(telegram)
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id=TELEGRAM_TOKEN.split(":")[0],
                          chat_id="424242", user_id="424242")
    reply = Reply(key=key, in_reply_to="5", language="en", notices=("Hello.",),
                  text="word " * 1200, feedback=TURN)
    log = IdLog()
    _run(adapter, lambda: adapter.send(reply, log))
    calls = telegram.calls_to("sendMessage")
    assert len(calls) == len(log.ids) == 3  # the notice, then the answer in two parts
    assert all(log.ids[i] for i in range(3)) and len(set(log.ids.values())) == 3
    assert [c.params.get("reply_markup") is not None for c in calls] == [False, False, True]
    markup = calls[-1].params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    assert markup == {"inline_keyboard": [[
        {"text": "👍", "callback_data": feedback_data(1, TURN)},
        {"text": "👎", "callback_data": feedback_data(-1, TURN)}]]}


def test_telegram_without_feedback_no_keyboard(telegram):
    adapter = _telegram(telegram)
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="424242",
                          user_id="424242")
    _run(adapter, lambda: adapter.send(Reply(key=key, in_reply_to="5", language="en",
                                             text="Hi"), IdLog()))
    assert telegram.calls_to("sendMessage")[0].params.get("reply_markup") is None


def test_telegram_button_rating_is_acknowledged_and_the_keyboard_replaced(telegram):
    adapter = _telegram(telegram)
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="424242",
                          user_id="424242")
    message = InboundMessage(
        key=key, event_id="9", message_id="77", kind=MessageKind.RATING, language_hint="id",
        rating=Rating(value=-1, source=RatingSource.BUTTON, turn_id=TURN, message_id="77",
                      callback_id="cb-1"))
    _run(adapter, lambda: adapter.acknowledge_rating(message, -1))
    [answer] = telegram.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "cb-1"
    assert answer.params["text"] == "Terima kasih atas masukan Anda."
    [edit] = telegram.calls_to("editMessageReplyMarkup")
    markup = edit.params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    assert str(edit.params["message_id"]) == "77"
    assert markup == {"inline_keyboard": [[{"text": "👎",
                                            "callback_data": feedback_data(-1, TURN)}]]}
    assert telegram.calls_to("sendMessage") == []  # never a text


def test_telegram_unknown_answer_callback_answered_silently(telegram):
    adapter = _telegram(telegram)
    key = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="424242",
                          user_id="424242")
    message = InboundMessage(
        key=key, event_id="9", message_id="77", kind=MessageKind.RATING,
        rating=Rating(value=1, source=RatingSource.BUTTON, turn_id=TURN, message_id="77",
                      callback_id="cb-2"))
    _run(adapter, lambda: adapter.acknowledge_rating(message, None))
    [answer] = telegram.calls_to("answerCallbackQuery")
    assert answer.params.get("text") is None
    assert telegram.calls_to("editMessageReplyMarkup") == []


LINE_USER = "U4af4980629d1c2b3a4f5e6d7c8b9a0f1"


def test_line_answer_carries_quick_reply_postbacks(line):
    settings = Settings(_env_file=None, line_channel_secret="s",
                        line_channel_access_token=LINE_TOKEN, line_api_base_url=line.base_url,
                        line_data_api_base_url=line.base_url)
    adapter = LineAdapter(settings)
    key = ConversationKey(platform=Platform.LINE, bot_id="U1", chat_id=LINE_USER,
                          user_id=LINE_USER)
    context = LineContext(to=LINE_USER, reply_token=line.issue_reply_token(LINE_USER),
                          reply_token_expires_at=time.time() + 50)
    reply = Reply(key=key, in_reply_to="m1", language="en", notices=("Hi.",), text="Answer.",
                  reply_context=context, feedback=TURN)
    log = IdLog()
    _run(adapter, lambda: adapter.send(reply, log))
    [call] = [c for c in line.calls if c.name == "reply"]
    first, last = call.body["messages"]
    assert "quickReply" not in first
    assert last["quickReply"] == {"items": [
        {"type": "action", "action": {"type": "postback", "label": "👍",
                                      "data": feedback_data(1, TURN)}},
        {"type": "action", "action": {"type": "postback", "label": "👎",
                                      "data": feedback_data(-1, TURN)}}]}
    assert log.ids[0] and log.ids[1] and log.ids[0] != log.ids[1]


def _whatsapp_adapter(whatsapp) -> WhatsAppAdapter:
    return WhatsAppAdapter(Settings(_env_file=None, whatsapp_access_token=WHATSAPP_TOKEN,
                                    whatsapp_app_secret="s",
                                    whatsapp_phone_number_id=WHATSAPP_PHONE_ID,
                                    whatsapp_api_base_url=f"{whatsapp.base_url}/v23.0"))


def _wa_key() -> ConversationKey:
    return ConversationKey(platform=Platform.WHATSAPP, bot_id=WHATSAPP_PHONE_ID,
                           chat_id="6591234567", user_id="6591234567")


def test_whatsapp_short_answer_is_an_interactive_message(whatsapp):
    adapter = _whatsapp_adapter(whatsapp)
    reply = Reply(key=_wa_key(), in_reply_to="wamid.IN", language="en", text="Short answer.",
                  reply_context=WhatsAppContext(to="6591234567", message_id="wamid.IN"),
                  feedback=TURN)
    log = IdLog()
    _run(adapter, lambda: adapter.send(reply, log))
    [call] = [c for c in whatsapp.calls if c.name == "send"]
    assert call.body["type"] == "interactive"
    interactive = call.body["interactive"]
    assert interactive["type"] == "button" and interactive["body"] == {"text": "Short answer."}
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": feedback_data(1, TURN), "title": "👍"}},
        {"type": "reply", "reply": {"id": feedback_data(-1, TURN), "title": "👎"}}]
    assert list(log.ids) == [0] and log.ids[0].startswith("wamid.")


def test_whatsapp_long_answer_gets_the_buttons_after_its_last_part(whatsapp):
    adapter = _whatsapp_adapter(whatsapp)
    answer = "long " * (INTERACTIVE_BODY_LIMIT // 5 + 10)
    reply = Reply(key=_wa_key(), in_reply_to="wamid.IN", language="th", text=answer,
                  reply_context=WhatsAppContext(to="6591234567", message_id="wamid.IN"),
                  feedback=TURN)
    log = IdLog()
    _run(adapter, lambda: adapter.send(reply, log))
    sends = [c for c in whatsapp.calls if c.name == "send"]
    assert [c.body["type"] for c in sends] == ["text", "interactive"]
    assert sends[1].body["interactive"]["body"]["text"] == "คำตอบนี้มีประโยชน์ไหม"
    assert sorted(log.ids) == [0, 1] and all(log.ids.values())
    # A retried delivery sends nothing again, the buttons included.
    whatsapp.reset()
    _run(adapter, lambda: adapter.send(reply, log))
    assert [c for c in whatsapp.calls if c.name == "send"] == []


def test_whatsapp_without_feedback_plain_text(whatsapp):
    adapter = _whatsapp_adapter(whatsapp)
    reply = Reply(key=_wa_key(), in_reply_to="wamid.IN", language="en", text="Hi",
                  reply_context=WhatsAppContext(to="6591234567", message_id="wamid.IN"))
    _run(adapter, lambda: adapter.send(reply, IdLog()))
    assert [c.body["type"] for c in whatsapp.calls if c.name == "send"] == ["text"]


