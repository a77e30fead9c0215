"""The hand-off to a person, end to end on Telegram, LINE and WhatsApp (issue 23): webhook ->
real Redis and Celery worker -> stand-in platform APIs, with the model behind the OpenAI-compatible
chat stand-in, which counts every model request.

A person who asks for a human is held: told once, in their language, that a person will reply;
what they write meanwhile reaches the log (and the history) and never the model. When the hold's
TTL runs out the bot answers again, with everything said meanwhile in its history.

Absence is proven by a positive event: a held turn's words are logged after its (empty) reply
went out, so once they are in the log nothing more is coming from that turn.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import select, update

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from storage.log.models import Conversation, LogMessage, utcnow
from tests.conftest import new_chat_id
from tests.helpers.chat_api import ChatStandIn
from tests.helpers.console import PASSWORD, csrf_of, login
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import text_update
from tests.helpers.waiting import sent_to, wait_until

_people = itertools.count(1)


@pytest.fixture(scope="module")
def chat_model() -> Iterator[ChatStandIn]:
    stand_in = ChatStandIn(answer="Hello, SEA-LION here.").start()
    yield stand_in
    stand_in.stop()
    assert stand_in.spec_errors == [], stand_in.spec_errors


@pytest.fixture(scope="module")
def held_service(deploy, chat_model):
    return deploy("qwen3_vl", MODEL_BACKEND="openai", OPENAI_BASE_URL=chat_model.v1,
                  OPENAI_MODEL=chat_model.model, ADMIN_PASSWORD=PASSWORD,
                  ADMIN_SESSION_SECRET="s" * 48)


@dataclass
class Person:
    """Someone writing to the bot on one platform."""

    platform: Platform
    chat: str
    say: Callable[[str], None]
    replies: Callable[[], list[str]]


@pytest.fixture(params=[Platform.TELEGRAM, Platform.LINE, Platform.WHATSAPP],
                ids=lambda p: p.value)
def person(request, held_service, telegram, line, whatsapp) -> Person:
    platform = request.param
    if platform is Platform.TELEGRAM:
        chat = new_chat_id()
        return Person(platform, str(chat),
                      lambda words: held_service.post_update(text_update(chat, words)),
                      lambda: [c.params["text"] for c in sent_to(telegram, chat)])
    if platform is Platform.LINE:
        user = f"U{next(_people) + 0xABC000:032x}"

        def say_line(words: str) -> None:
            body = line_event("text", user, reply_token=line.issue_reply_token(user), text=words)
            assert held_service.post_line(body).status_code == 200

        return Person(platform, user, say_line, lambda: line.sent_texts(user))
    wa_id = str(6598000000 + next(_people))

    def say_whatsapp(words: str) -> None:
        body = whatsapp_message("text", wa_id, text={"body": words})
        assert held_service.post_whatsapp(body).status_code == 200

    return Person(platform, wa_id, say_whatsapp, lambda: whatsapp.sent_texts(wa_id))


def conversation(service, person: Person) -> Conversation | None:
    log = ConversationLog(service.env["DATABASE_URL"])
    try:
        with log.session() as session:
            return session.scalars(select(Conversation).where(
                Conversation.platform == person.platform.value,
                Conversation.chat_id == person.chat)).first()
    finally:
        log.close()


def inbound(service, person: Person) -> list[str]:
    row = conversation(service, person)
    if row is None:
        return []
    log = ConversationLog(service.env["DATABASE_URL"])
    try:
        thread = log.thread(row.id)
        return [m.text for m in thread.messages if m.direction == "in"] if thread else []
    finally:
        log.close()


def key_of(row: Conversation) -> ConversationKey:
    return ConversationKey(platform=Platform(row.platform), bot_id=row.bot_id,
                           chat_id=row.chat_id, user_id=row.user_id)


def chat_requests(model: ChatStandIn) -> list:
    return [c for c in model.calls if c.name == "chat"]


def test_a_person_who_asks_for_a_human_is_held_told_once_and_the_model_never_runs(
        held_service, chat_model, person):
    asked_before = len(chat_requests(chat_model))
    person.say("/human")
    wait_until(lambda: person.replies(), 60, "the hand-off notice")
    row = wait_until(lambda: conversation(held_service, person), 30, "the turn logged")
    assert row.language
    assert person.replies() == [text(Text.HANDOFF_STARTED, row.language)]

    person.say("Are you there? My parcel 4471 never came.")
    person.say("/human")
    # One held turn or two (the second message may join the first's turn): all logged.
    held = "Are you there? My parcel 4471 never came.\n/human"
    wait_until(lambda: "\n".join(inbound(held_service, person)[1:]) == held, 60,
               "the held turns logged")
    assert person.replies() == [text(Text.HANDOFF_STARTED, row.language)]  # once
    assert len(chat_requests(chat_model)) == asked_before  # no model call while held
    # The request that started the hold is marked in the log (the insights count it); what
    # the person wrote while held is not a new request.
    log = ConversationLog(held_service.env["DATABASE_URL"])
    try:
        with log.session() as session:
            marks = session.scalars(select(LogMessage.handoff).where(
                LogMessage.conversation_id == row.id, LogMessage.direction == "in")
                .order_by(LogMessage.id)).all()
    finally:
        log.close()
    assert marks[0] == "person" and set(marks[1:]) == {None}, marks

    # The hold's time to live runs out (HANDOFF_TTL_SECONDS): the bot answers again, and the
    # model sees what was said while held.
    client = redis.Redis.from_url(held_service.redis_url)
    hold = KeyBuilder().handoff(key_of(row))
    assert client.exists(hold)
    client.pexpire(hold, 100)
    wait_until(lambda: not client.exists(hold), 10, "the hold to expire")
    person.say("Hello again")
    wait_until(lambda: len(person.replies()) == 2, 60, "the bot's answer")
    assert person.replies()[1] == "Hello, SEA-LION here."
    [request] = chat_requests(chat_model)[asked_before:]
    assert "My parcel 4471 never came." in str(request.body["messages"])
    client.close()


def console(service) -> str:
    """Sign the deployment's client in to the console; returns a CSRF token of its forms."""
    service.client.follow_redirects = False
    page = service.client.get("/admin/handoffs")
    if page.status_code != 200:  # not signed in yet (the client is the session's)
        response = login(service.client)
        assert response.status_code == 303, response.text
        page = service.client.get("/admin/handoffs")
    return csrf_of(page.text)


def test_an_admin_takes_over_answers_on_the_platform_and_releases_to_the_bot(
        held_service, chat_model, person):
    person.say("Hi, what time do you open?")
    wait_until(lambda: person.replies(), 60, "the bot's answer")
    row = wait_until(lambda: conversation(held_service, person), 30, "the turn logged")
    client, page = held_service.client, f"/admin/conversations/{row.id}"
    csrf = console(held_service)
    assert client.post(f"{page}/handoff", data={"csrf": "forged"}).status_code == 403

    taken = client.post(f"{page}/handoff", data={"csrf": csrf}, follow_redirects=False)
    assert taken.status_code == 303 and taken.headers["location"] == page
    shown = client.get(page).text
    assert "held for a person" in shown and "Release to the bot" in shown
    waiting = client.get("/admin/handoffs").text
    assert f'href="{page}"' in waiting and "no answer yet" in waiting
    assert "Waiting for a person (" in client.get("/admin").text

    asked = len(chat_requests(chat_model))
    person.say("Hello? Anyone?")
    wait_until(lambda: len(person.replies()) == 2, 60, "the hand-off notice")
    assert person.replies()[1] == text(Text.HANDOFF_STARTED, row.language)

    answered = client.post(f"{page}/reply", data={"csrf": csrf,
                                                  "text": "We open at **9 am**, Ana here."},
                           follow_redirects=False)
    assert answered.status_code == 303
    wait_until(lambda: len(person.replies()) == 3, 60, "the operator's answer")
    assert "We open at" in person.replies()[2] and "9 am" in person.replies()[2]
    wait_until(lambda: "operator: admin" in client.get(page).text, 30, "the operator row")
    assert len(chat_requests(chat_model)) == asked  # the model was not asked meanwhile

    released = client.post(f"{page}/release", data={"csrf": csrf}, follow_redirects=False)
    assert released.status_code == 303
    assert "Take over" in client.get(page).text
    person.say("Thanks! And on Sunday?")
    wait_until(lambda: len(person.replies()) == 4, 60, "the bot's answer after release")
    assert person.replies()[3] == "Hello, SEA-LION here."
    [request] = chat_requests(chat_model)[asked:]
    said = str(request.body["messages"])
    assert "We open at **9 am**, Ana here." in said and "Hello? Anyone?" in said


def test_whatsapp_outside_the_24_hour_window_cannot_be_answered(held_service, whatsapp):
    wa_id = str(6598100000 + next(_people))
    body = whatsapp_message("text", wa_id, text={"body": "/human"})
    assert held_service.post_whatsapp(body).status_code == 200
    person = Person(Platform.WHATSAPP, wa_id, lambda words: None,
                    lambda: whatsapp.sent_texts(wa_id))
    row = wait_until(lambda: conversation(held_service, person), 60, "the turn logged")
    log = ConversationLog(held_service.env["DATABASE_URL"])
    try:
        with log.session() as session, session.begin():
            session.execute(update(LogMessage).where(LogMessage.conversation_id == row.id)
                            .values(created_at=utcnow() - dt.timedelta(hours=25)))
    finally:
        log.close()
    csrf = console(held_service)
    refused = held_service.client.post(f"/admin/conversations/{row.id}/reply",
                                       data={"csrf": csrf, "text": "Sorry for the wait"})
    assert refused.status_code == 409
    assert "cannot be delivered" in refused.text and "24 hours" in refused.text
    assert whatsapp.sent_texts(wa_id) == [text(Text.HANDOFF_STARTED, row.language)]


def test_the_conversation_page_gets_new_messages_without_reloading(held_service, telegram):
    chat = new_chat_id()
    held_service.post_update(text_update(chat, "/human"))
    person = Person(Platform.TELEGRAM, str(chat), lambda words: None, lambda: [])
    row = wait_until(lambda: conversation(held_service, person), 60, "the turn logged")
    csrf = console(held_service)
    assert csrf
    client, page = held_service.client, f"/admin/conversations/{row.id}"
    shown = client.get(page)
    policy = shown.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert '<script src="/admin/static/console.js" defer></script>' in shown.text
    script = client.get("/admin/static/console.js")
    assert script.status_code == 200 and "fetch(" in script.text
    first = client.get(f"{page}/live", params={"after": 0}).json()
    assert first["held"] is True and first["waiting"] >= 1

    held_service.post_update(text_update(chat, "<b>still</b> waiting"))
    fresh = wait_until(lambda: client.get(f"{page}/live", params={"after": first["last"]})
                       .json()["html"], 60, "the new message")
    assert "&lt;b&gt;still&lt;/b&gt; waiting" in fresh and "<b>still" not in fresh
    client.cookies.clear()
    assert client.get(f"{page}/live").status_code == 401
