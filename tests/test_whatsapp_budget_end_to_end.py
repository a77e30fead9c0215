"""WHATSAPP_MONTHLY_MESSAGE_BUDGET end to end: the real webhook, Redis, worker and the WhatsApp
stand-in; the answers count in the month's counter, and once it reaches the budget each person
gets one short note that the service is paused, and nothing more."""

from __future__ import annotations

import itertools
import time

import pytest
import redis

from bot.kernel.messages import ConversationKey, Platform
from bot.kernel.texts import Text, text
from storage.keys import KeyBuilder
from tests.helpers.payloads import whatsapp_person
from tests.helpers.waiting import wait_until
from workers.turn.budget import this_month

PHONE_ID = "106540352242922"
_people = itertools.count(int(time.time()) % 100_000 * 10 + 6_560_000_000)


@pytest.fixture(scope="module")
def service(deploy):
    return deploy("qwen3_vl", WHATSAPP_MONTHLY_MESSAGE_BUDGET="2")


def test_at_the_budget_one_note_each_then_silence(service, whatsapp):
    keys = KeyBuilder()
    client = redis.Redis.from_url(service.redis_url)
    counter = keys.sent_month(Platform.WHATSAPP, PHONE_ID, this_month())
    siti, budi = str(next(_people)), str(next(_people))
    try:
        for n in (1, 2):
            assert service.post_whatsapp(whatsapp_person(f"question {n}", phone=siti)
                                         ).status_code == 200
            wait_until(lambda n=n: len(whatsapp.sent_texts(siti)) >= n, 60, f"answer {n}")
        wait_until(lambda: client.get(counter) == b"2", 30, "two messages counted")

        paused = text(Text.PAUSED, "en")
        service.post_whatsapp(whatsapp_person("question 3", phone=siti))
        wait_until(lambda: len(whatsapp.sent_texts(siti)) >= 3, 60, "the pause note")
        assert whatsapp.sent_texts(siti)[2] == paused
        # Once told, nothing more: the next turn ends (its keys go) without a send.
        key = ConversationKey(platform=Platform.WHATSAPP, bot_id=PHONE_ID, chat_id=siti,
                              user_id=siti)
        service.post_whatsapp(whatsapp_person("question 4", phone=siti))
        wait_until(lambda: not client.exists(keys.pending(key), keys.turn(key)), 60,
                   "the fourth turn ends")
        assert len(whatsapp.sent_texts(siti)) == 3
        # Someone else gets their own note.
        service.post_whatsapp(whatsapp_person("hello", phone=budi))
        wait_until(lambda: whatsapp.sent_texts(budi), 60, "Budi's note")
        assert whatsapp.sent_texts(budi) == [paused]
    finally:
        client.close()
