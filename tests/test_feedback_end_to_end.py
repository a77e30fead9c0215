"""Feedback on answers, end to end on Telegram, LINE and WhatsApp (#23): webhook -> real Redis
and Celery worker -> stand-in platform APIs (checked against the vendored specs), the model
behind the chat stand-in, which counts every model request.

An answer goes out with its 👍/👎 buttons; the person taps 👎; the rating is stored in the log
against that answer; no second model call happens and nothing is sent as text. A reaction on
Telegram and WhatsApp rates the answer it is on, replacing the button's rating; a redelivered
rating webhook is dropped.

Absence is proven by a positive event: the rating arrives in the log (written by the worker's
`record_rating` task), and the model's request count and the texts sent are read after it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.kernel.messages import Platform
from storage.log import ConversationLog
from storage.log.models import Conversation, LogMessage, Rating
from tests.conftest import new_chat_id
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import text_update
from tests.helpers.waiting import sent_to, wait_settled, wait_until

_people = itertools.count(1)
_update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000 + 500_000)
ANSWER = "Hello, SEA-LION here."


@pytest.fixture(scope="module")
def chat_model() -> Iterator[ChatStandIn]:
    stand_in = ChatStandIn(answer=ANSWER).start()
    yield stand_in
    stand_in.stop()
    assert stand_in.spec_errors == [], stand_in.spec_errors


@pytest.fixture(scope="module")
def feedback_service(deploy, chat_model):
    return deploy("qwen3_vl", MODEL_BACKEND="openai", OPENAI_BASE_URL=chat_model.v1,
                  OPENAI_MODEL=chat_model.model, FEEDBACK_BUTTONS="true")


def model_calls(model: ChatStandIn) -> int:
    return len([c for c in model.calls if c.name == "chat"])


def rating_of(service, platform: Platform, chat: str) -> tuple[int, str, int] | None:
    """(rating, source, answer row id) of the conversation's one rating, or None."""
    log = ConversationLog(service.env["DATABASE_URL"])
    try:
        with log.session() as session:
            found = session.execute(
                select(Rating.rating, Rating.source, Rating.message_id)
                .join(Conversation, Conversation.id == Rating.conversation_id)
                .where(Conversation.platform == platform.value,
                       Conversation.chat_id == chat)).all()
            assert len(found) <= 1, found
            return tuple(found[0]) if found else None
    finally:
        log.close()


def answers(service, platform: Platform, chat: str) -> list[tuple[int, str]]:
    """(row id, turn id) of the conversation's logged answers."""
    log = ConversationLog(service.env["DATABASE_URL"])
    try:
        with log.session() as session:
            return [tuple(r) for r in session.execute(
                select(LogMessage.id, LogMessage.turn_id)
                .join(Conversation, Conversation.id == LogMessage.conversation_id)
                .where(Conversation.platform == platform.value, Conversation.chat_id == chat,
                       LogMessage.direction == "out").order_by(LogMessage.id)).all()]
    finally:
        log.close()


def _markup(call) -> dict:
    markup = call.params.get("reply_markup")
    return json.loads(markup) if isinstance(markup, str) else markup


def test_telegram_a_tap_on_thumbs_down_and_a_reaction(feedback_service, chat_model, telegram):
    chat = new_chat_id()
    asked = model_calls(chat_model)
    assert feedback_service.post_update(text_update(chat, "Hi there")).status_code == 200
    [sent] = wait_until(lambda: sent_to(telegram, chat), 90, "the answer")
    wait_settled(chat)
    [[up, down]] = _markup(sent)["inline_keyboard"]
    assert (up["text"], down["text"]) == ("👍", "👎")
    message_id = sent.answer["result"]["message_id"]
    [(answer_id, turn_id)] = wait_until(lambda: answers(feedback_service, Platform.TELEGRAM,
                                                        str(chat)), 30, "the answer logged")
    assert down["callback_data"] == f"fb:-1:{turn_id}"
    asked_after_answer = model_calls(chat_model)
    assert asked_after_answer == asked + 1

    tap = {"update_id": next(_update_ids), "callback_query": {
        "id": f"cb{chat}", "chat_instance": "-42",
        "from": {"id": chat, "is_bot": False, "first_name": "Siti", "language_code": "id"},
        "message": {"message_id": message_id, "date": int(time.time()),
                    "chat": {"id": chat, "type": "private"}},
        "data": down["callback_data"]}}
    assert feedback_service.post_update(tap).status_code == 200
    assert feedback_service.post_update(tap).status_code == 200  # redelivered: dropped
    wait_until(lambda: rating_of(feedback_service, Platform.TELEGRAM, str(chat)), 60,
               "the rating stored")
    assert rating_of(feedback_service, Platform.TELEGRAM, str(chat)) == (-1, "button", answer_id)
    [answered] = wait_until(lambda: [c for c in telegram.calls_to("answerCallbackQuery")
                                     if c.params.get("callback_query_id") == f"cb{chat}"],
                            30, "the callback answered")
    assert answered.params["text"] == "Terima kasih atas masukan Anda."
    [edit] = wait_until(lambda: [c for c in telegram.calls_to("editMessageReplyMarkup")
                                 if str(c.params.get("chat_id")) == str(chat)], 30,
                        "the keyboard replaced by the choice")
    assert _markup(edit) == {"inline_keyboard": [[down]]}

    # A reaction on the answer replaces the button's rating (message_reaction).
    reaction = {"update_id": next(_update_ids), "message_reaction": {
        "chat": {"id": chat, "type": "private"}, "message_id": message_id,
        "user": {"id": chat, "is_bot": False, "first_name": "Siti"}, "date": int(time.time()),
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "❤"}]}}
    assert feedback_service.post_update(reaction).status_code == 200
    wait_until(lambda: (rating_of(feedback_service, Platform.TELEGRAM, str(chat)) or (0,))[0]
               == 1, 60, "the reaction's rating")
    assert rating_of(feedback_service, Platform.TELEGRAM, str(chat)) == (1, "reaction", answer_id)
    wait_settled(chat)
    assert model_calls(chat_model) == asked_after_answer  # no second model call
    assert len(sent_to(telegram, chat)) == 1  # no text for a rating
    assert len([c for c in telegram.calls_to("answerCallbackQuery")
                if c.params.get("callback_query_id") == f"cb{chat}"]) == 1  # deduplicated


def test_telegram_a_reaction_on_an_unknown_message_is_ignored(feedback_service, chat_model,
                                                              telegram):
    chat = new_chat_id()
    feedback_service.post_update(text_update(chat, "Hello"))
    [sent] = wait_until(lambda: sent_to(telegram, chat), 90, "the answer")
    wait_until(lambda: answers(feedback_service, Platform.TELEGRAM, str(chat)), 30, "logged")
    asked = model_calls(chat_model)
    for message_id, emoji in ((999_999, "👎"), (sent.answer["result"]["message_id"], "👎")):
        feedback_service.post_update({"update_id": next(_update_ids), "message_reaction": {
            "chat": {"id": chat, "type": "private"}, "message_id": message_id,
            "user": {"id": chat, "is_bot": False, "first_name": "Siti"},
            "date": int(time.time()), "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": emoji}]}})
    # The second (on the answer) arrives: the first, on no answer, stored nothing.
    rated = wait_until(lambda: rating_of(feedback_service, Platform.TELEGRAM, str(chat)), 60,
                       "the rating of the answer")
    assert rated[:2] == (-1, "reaction")
    assert model_calls(chat_model) == asked and len(sent_to(telegram, chat)) == 1


def test_line_a_tap_on_thumbs_down(feedback_service, chat_model, line):
    user = f"U{next(_people) + 0xFEED000:032x}"
    asked = model_calls(chat_model)
    body = line_event("text", user, reply_token=line.issue_reply_token(user), text="Hi there")
    assert feedback_service.post_line(body).status_code == 200
    wait_until(lambda: line.sent_texts(user), 90, "the answer")
    wait_settled(user)
    [call] = [c for c in line.calls if c.name in ("reply", "push") and c.status == 200
              and (c.body.get("to") in (None, user))][-1:]
    items = call.body["messages"][-1]["quickReply"]["items"]
    assert [i["action"]["label"] for i in items] == ["👍", "👎"]
    assert all(i["action"]["type"] == "postback" and "displayText" not in i["action"]
               for i in items)
    [(answer_id, turn_id)] = wait_until(lambda: answers(feedback_service, Platform.LINE, user),
                                        30, "the answer logged")
    assert items[1]["action"]["data"] == f"fb:-1:{turn_id}"
    asked_after_answer = model_calls(chat_model)
    assert asked_after_answer == asked + 1

    tap = line_event("text", user, reply_token=line.issue_reply_token(user))
    event = tap["events"][0]
    del event["message"]
    event.update(type="postback", postback={"data": items[1]["action"]["data"]})
    assert feedback_service.post_line(tap).status_code == 200
    assert feedback_service.post_line(tap).status_code == 200  # redelivered: dropped
    wait_until(lambda: rating_of(feedback_service, Platform.LINE, user), 60, "the rating")
    assert rating_of(feedback_service, Platform.LINE, user) == (-1, "button", answer_id)
    wait_settled(user)
    assert model_calls(chat_model) == asked_after_answer
    assert len(line.sent_texts(user)) == 1  # no text for a rating


def test_whatsapp_a_tap_on_thumbs_down_and_a_reaction(feedback_service, chat_model, whatsapp):
    wa_id = str(6597000000 + next(_people))
    asked = model_calls(chat_model)
    body = whatsapp_message("text", wa_id, text={"body": "Hi there"})
    assert feedback_service.post_whatsapp(body).status_code == 200
    wait_until(lambda: whatsapp.sent(wa_id), 90, "the answer")
    wait_settled(wa_id)
    [sent] = whatsapp.sent(wa_id)
    assert sent.body["type"] == "interactive"  # the short answer carries the buttons
    assert sent.body["interactive"]["body"]["text"] == ANSWER
    up, down = (b["reply"] for b in sent.body["interactive"]["action"]["buttons"])
    assert (up["title"], down["title"]) == ("👍", "👎")
    wamid = sent.answer["messages"][0]["id"]
    [(answer_id, turn_id)] = wait_until(
        lambda: answers(feedback_service, Platform.WHATSAPP, wa_id), 30, "the answer logged")
    assert down["id"] == f"fb:-1:{turn_id}"
    asked_after_answer = model_calls(chat_model)
    assert asked_after_answer == asked + 1

    tap = whatsapp_message("text", wa_id)
    message = tap["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message.update(type="interactive", context={"from": "15550783881", "id": wamid},
                   interactive={"type": "button_reply", "button_reply": down})
    assert feedback_service.post_whatsapp(tap).status_code == 200
    assert feedback_service.post_whatsapp(tap).status_code == 200  # redelivered: dropped
    wait_until(lambda: rating_of(feedback_service, Platform.WHATSAPP, wa_id), 60, "the rating")
    assert rating_of(feedback_service, Platform.WHATSAPP, wa_id) == (-1, "button", answer_id)

    # A reaction on the answer's message replaces it; removing the reaction removes it.
    react = whatsapp_message("reaction", wa_id, reaction={"message_id": wamid, "emoji": "👍"})
    assert feedback_service.post_whatsapp(react).status_code == 200
    wait_until(lambda: (rating_of(feedback_service, Platform.WHATSAPP, wa_id) or (0,))[0] == 1,
               60, "the reaction's rating")
    assert rating_of(feedback_service, Platform.WHATSAPP, wa_id) == (1, "reaction", answer_id)
    removed = whatsapp_message("reaction", wa_id, reaction={"message_id": wamid, "emoji": ""})
    assert feedback_service.post_whatsapp(removed).status_code == 200
    wait_until(lambda: rating_of(feedback_service, Platform.WHATSAPP, wa_id) is None, 60,
               "the rating removed")
    wait_settled(wa_id)
    assert model_calls(chat_model) == asked_after_answer  # no second model call
    assert len(whatsapp.sent(wa_id)) == 1  # no text for a rating
