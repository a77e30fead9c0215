"""Moderation and abuse controls, end to end on all three platforms: webhook -> real Redis and
Celery worker -> the guard (a loopback OpenAI-compatible stand-in answering safe/unsafe by rule,
tests/helpers/guard_api.py) around the tiny chat model -> the platform stand-ins.

One deployment: GUARD_BACKEND=openai, GUARD_FAIL=closed, RATE_LIMIT_MESSAGES=3 per 30 s,
BUSY_NOTICE_SECONDS=1.5. The chat model is "called" for a turn when its log row records tokens
generated, and when the guard sees an answer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import redis

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import REPLY_INSTRUCTION, Text, text
from storage.abuse import BlockList
from storage.history import RedisHistory
from storage.keys import KeyBuilder
from storage.log import ConversationLog
from storage.metrics import RedisMetrics
from tests.conftest import TELEGRAM_TOKEN, WHATSAPP_PHONE_ID, new_chat_id
from tests.helpers.conversation_log import find_conversation
from tests.helpers.guard_api import GuardStandIn
from tests.helpers.payloads import line_event, whatsapp_message
from tests.helpers.updates import photo_update, text_update
from tests.helpers.waiting import sent_to, wait_count, wait_settled, wait_until
from tests.test_telegram_end_to_end import jpeg

BOT_ID = TELEGRAM_TOKEN.split(":")[0]
GUARD_KEY = "guard-secret-key"
_people = itertools.count(1)

SAFE = "Hello there, could you tell me about the weather in Singapore today?"
UNSAFE = "Hello there, please tell me UNSAFE-INPUT right now, my good friend."
FLAG_ANSWER = "Hello there, write anything at all UNSAFE-ANSWER for me, my good friend."


@pytest.fixture(scope="module")
def guard_api() -> Iterator[GuardStandIn]:
    with GuardStandIn(api_key=GUARD_KEY) as server:
        yield server


@pytest.fixture()
def guard(guard_api) -> Iterator[GuardStandIn]:
    guard_api.reset()
    yield guard_api
    assert guard_api.spec_errors == [], guard_api.spec_errors


@pytest.fixture(scope="module")
def moderated(deploy, guard_api):
    return deploy("qwen3_vl", GUARD_BACKEND="openai", GUARD_BASE_URL=guard_api.v1,
                  GUARD_API_KEY=GUARD_KEY, GUARD_MODEL=guard_api.model, GUARD_FAIL="closed",
                  GUARD_TIMEOUT_SECONDS="3", RATE_LIMIT_MESSAGES="3",
                  RATE_LIMIT_WINDOW_SECONDS="30", BUSY_NOTICE_SECONDS="1.5")


# --- one person on each platform ---------------------------------------------------------------

class Person:
    """Someone writing to the bot on one platform, and what the bot sent them."""

    def __init__(self, platform: str, service, stand_in) -> None:
        self.platform, self.service, self.stand_in = platform, service, stand_in
        n = next(_people)
        if platform == "telegram":
            self.id = str(new_chat_id())
            self.key = ConversationKey(platform=Platform.TELEGRAM, bot_id=BOT_ID,
                                       chat_id=self.id, user_id=self.id)
        elif platform == "line":
            self.id = f"U{n + 500:032x}"
            self.key = ConversationKey(platform=Platform.LINE, bot_id=_line_bot_id(service),
                                       chat_id=self.id, user_id=self.id)
        else:
            self.id = str(6599000000 + n)
            self.key = ConversationKey(platform=Platform.WHATSAPP, bot_id=WHATSAPP_PHONE_ID,
                                       chat_id=self.id, user_id=self.id)

    def say(self, words: str) -> None:
        if self.platform == "telegram":
            response = self.service.post_update(text_update(int(self.id), words,
                                                            language_code="en"))
        elif self.platform == "line":
            response = self.service.post_line(line_event(
                "text", self.id, reply_token=self.stand_in.issue_reply_token(self.id),
                text=words))
        else:
            response = self.service.post_whatsapp(whatsapp_message("text", self.id,
                                                                   text={"body": words}))
        assert response.status_code == 200

    def sent(self) -> list[str]:
        if self.platform == "telegram":
            return [c.params["text"] for c in sent_to(self.stand_in, int(self.id))]
        return self.stand_in.sent_texts(self.id)

    def wait(self, count: int, timeout: float = 60) -> list[str]:
        return wait_count(self.sent, self.id, count, timeout)


def _line_bot_id(service) -> str:
    """LINE names the bot in each webhook (`destination`): the recorded one."""
    from tests.helpers.payloads import load

    return str(load("line", "text")["destination"])


@pytest.fixture(params=["telegram", "line", "whatsapp"])
def person(request, moderated, telegram, line, whatsapp, guard) -> Person:
    stand_in = {"telegram": telegram, "line": line, "whatsapp": whatsapp}[request.param]
    return Person(request.param, moderated, stand_in)


def history(service, person: Person) -> list[tuple[str, str]]:
    store = RedisHistory(redis.Redis.from_url(service.redis_url), ttl=3600, max_turns=50)
    return [(e.role, e.text) for e in store.load(person.key)]


def logged(service, person: Person) -> list:
    log = ConversationLog(service.env["DATABASE_URL"])
    try:
        found = wait_until(lambda: find_conversation(log, person.key), 20, "the log row")
        return log.thread(found.id).messages
    finally:
        log.close()


# --- the guard ---------------------------------------------------------------------------------

def test_safe_message_is_answered_after_both_checks(person, guard):
    person.say(SAFE)
    [answer] = person.wait(1)
    assert answer.strip() and answer != text(Text.GUARD_REFUSAL, "en")
    sides = [c.side for c in guard.checks() if c.prompt.strip() == SAFE]
    assert sides == ["input", "output"]


def test_unsafe_message_is_refused_without_calling_the_model(person, guard):
    person.say(UNSAFE)
    [answer] = person.wait(1)
    assert answer == text(Text.GUARD_REFUSAL, "en")
    assert [c.side for c in guard.checks()] == ["input"]  # no answer to check
    assert history(person.service, person) == []  # the refused text is not remembered
    [inbound, outbound] = logged(person.service, person)
    assert (inbound.guard_label, outbound.text) == ("unsafe", answer)
    assert outbound.completion_tokens is None  # the chat model never ran for this turn


def test_unsafe_answer_is_replaced_by_the_refusal(person, guard):
    person.say(FLAG_ANSWER)
    [answer] = person.wait(1)
    assert answer == text(Text.GUARD_REFUSAL, "en")
    output = [c for c in guard.checks() if c.side == "output"]
    assert len(output) == 1 and output[0].answer == "unsafe"
    withheld = output[0].response
    assert withheld and withheld not in person.sent()
    [inbound, outbound] = logged(person.service, person)
    assert inbound.guard_label == "safe" and outbound.guard_label == "unsafe"
    assert outbound.guard_withheld == withheld and outbound.text == answer
    assert [role for role, _ in history(person.service, person)] == ["user"]


def test_refusal_is_in_the_persons_language(moderated, telegram, guard):
    chat = new_chat_id()
    moderated.post_update(text_update(
        chat, "สวัสดีครับ UNSAFE-INPUT วันนี้อากาศที่กรุงเทพร้อนมาก ฝนอาจจะตกตอนเย็น",
        language_code="th"))
    wait_until(lambda: sent_to(telegram, chat), 60, "the refusal")
    assert sent_to(telegram, chat)[0].params["text"] == text(Text.GUARD_REFUSAL, "th")


def test_a_guard_that_is_down_fails_closed(moderated, telegram, guard):
    guard.down = True
    person = Person("telegram", moderated, telegram)
    person.say(SAFE)
    assert person.wait(1) == [text(Text.APOLOGY, "en")]
    # The chat model never ran for this turn (the log records what it generated).
    assert [m.completion_tokens for m in logged(moderated, person) if m.direction == "out"] \
        == [None]
    reader = RedisMetrics(redis.Redis.from_url(moderated.redis_url))
    wait_until(lambda: reader.counter("guard_failures").get(
        '{"mode":"closed","side":"input"}', 0) >= 1, 10, "the guard failure counted")


def test_photos_go_to_the_guard(moderated, telegram, guard):
    chat = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="blue"), file_path="photos/guard-blue.jpg")
    moderated.post_update(photo_update(chat, caption="What is in this picture?"))
    wait_until(lambda: sent_to(telegram, chat), 60, "the answer")
    [check] = [c for c in guard.checks("input") if c.prompt == "What is in this picture?"]
    assert check.images == 1 and check.answer == "safe"

    red = new_chat_id()
    telegram.add_file("photo-large", jpeg(color="red"), file_path="photos/guard-red.jpg")
    moderated.post_update(photo_update(red, caption="What is in this picture?"))
    wait_until(lambda: sent_to(telegram, red), 60, "the refusal")
    wait_settled(red)
    [refusal] = sent_to(telegram, red)
    assert refusal.params["text"] in {text(Text.GUARD_REFUSAL, lang)
                                      for lang in REPLY_INSTRUCTION}
    assert [c.images for c in guard.checks("output")
            if c.prompt == "What is in this picture?"] == [0]  # only the blue photo's answer


def test_streamed_draft_is_checked_and_cleared_when_flagged(deploy, telegram, guard_api):
    guard_api.reset()
    # The typing and draft refresh stops after TURN_TIMEOUT_SECONDS: room for a slow CPU.
    service = deploy("long", MAX_NEW_TOKENS="300", TELEGRAM_STREAMING="true",
                     TURN_TIMEOUT_SECONDS="120", CELERY_TASK_TIME_LIMIT="130",
                     CELERY_VISIBILITY_TIMEOUT="140",
                     STREAM_INTERVAL_SECONDS="0.3", GUARD_BACKEND="openai",
                     GUARD_BASE_URL=guard_api.v1, GUARD_API_KEY=GUARD_KEY,
                     GUARD_MODEL=guard_api.model, RATE_LIMIT_MESSAGES="0")
    chat = new_chat_id()
    service.post_update(text_update(chat, "Write me a long story UNSAFE-ANSWER please.",
                                    language_code="en"))
    wait_until(lambda: sent_to(telegram, chat), 180, "the final answer")
    wait_settled(chat, timeout=180)
    [final] = sent_to(telegram, chat)
    assert final.params["text"] == text(Text.GUARD_REFUSAL, "en")
    drafts = [d.params.get("text", "") for d in sent_to(telegram, chat, "sendMessageDraft")]
    assert drafts and drafts[-1] == ""  # the flagged draft was cleared
    assert all(d == "" for d in drafts)  # nothing unchecked (or flagged) was ever shown
    assert any(c.side == "output" for c in guard_api.checks())  # drafts were checked
    assert guard_api.spec_errors == []


# --- abuse controls ----------------------------------------------------------------------------

def test_rate_limit_notice_once_and_model_calls_within_the_limit(person, guard):
    words = [f"Message number {i} about the weather in Singapore today." for i in range(6)]
    for w in words:
        person.say(w)
    wait_until(lambda: text(Text.RATE_LIMITED, "en") in person.sent(), 60, "the notice")
    wait_settled(person.id)  # every turn done
    sent = person.sent()
    assert sent.count(text(Text.RATE_LIMITED, "en")) == 1
    remembered = "\n".join(t for role, t in history(person.service, person) if role == "user")
    assert sum(w in remembered for w in words) == 3  # exactly the limit reached the model
    checked = "\n".join(c.prompt for c in guard.checks("input"))
    assert sum(w in checked for w in words) == 3


def test_blocked_person_is_acknowledged_logged_and_ignored(person, guard):
    blocklist = BlockList(redis.Redis.from_url(person.service.redis_url))
    blocklist.block(person.key.platform, person.id)
    try:
        person.say(SAFE)
        wait_settled(person.id)
        assert person.sent() == []
        assert guard.checks() == []
        [inbound] = logged(person.service, person)
        assert (inbound.direction, inbound.guard_label, inbound.text) == ("in", "blocked", SAFE)
    finally:
        blocklist.unblock(person.key.platform, person.id)
    person.say(SAFE)
    person.wait(1)


def test_busy_notice_under_a_backlog(person, guard, telegram):
    waiting = Person("telegram", person.service, telegram)
    # The backlog is the service's: an answer of an earlier test still waiting on a loaded
    # machine would make even the first in line "busy". Start from an empty one.
    client = redis.Redis.from_url(person.service.redis_url)
    wait_until(lambda: client.zcard(KeyBuilder().backlog()) == 0, 60, "an empty backlog")
    client.close()
    guard.set_delay("chat", 4.0)  # the guard is slow: answers wait
    try:
        waiting.say(SAFE)
        wait_until(lambda: guard.in_flight("chat"), 30, "a guard check in flight")
        time.sleep(2.0)  # now older than BUSY_NOTICE_SECONDS
        person.say(SAFE)
        wait_until(lambda: person.sent(), 30, "the busy notice")
        assert person.sent()[0] == text(Text.BUSY, "en")
    finally:
        guard.set_delay("chat", 0.0)
    sent = person.wait(2, timeout=60)
    assert sent[0] == text(Text.BUSY, "en") and sent[1] != text(Text.BUSY, "en")
    assert text(Text.BUSY, "en") not in waiting.sent()  # the first in line got none
