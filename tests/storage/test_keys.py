"""Every Redis key and queue name comes from storage/keys.py: the admin console finds a person's
conversations by their keys, and the queues the workers consume are `Queue`'s."""

from __future__ import annotations

from bot.kernel.messages import ConversationKey, Platform
from storage.keys import KeyBuilder, Queue

KEYS = KeyBuilder()


def test_a_conversation_key_names_its_conversation():
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id="1065", chat_id="6591", user_id="6591")
    for name in (KEYS.history(key), KEYS.image(key, "abc"), KEYS.language_pin(key),
                 KEYS.images(key)):
        assert KEYS.conversation_of(name) == key
    assert KEYS.conversation_of(KEYS.workers()) is None
    assert KEYS.conversation_of(KEYS.turn_sent("t1", 0)) is None
    assert KEYS.conversation_of("sealion:conv:fax:1:2:3:history") is None
    assert KeyBuilder("other").conversation_of(KEYS.history(key)) is None


def test_a_person_pattern_is_escaped():
    assert KEYS.person_pattern(Platform.LINE, "U1*[x]") == r"sealion:conv:line:*:U1\*\[x\]:*"


def test_queue_names():
    from workers.celery_app import INFERENCE_QUEUE, IO_QUEUE

    assert (IO_QUEUE, INFERENCE_QUEUE) == (Queue.IO, Queue.INFERENCE) == ("io", "inference")
    assert KEYS.metric("counter", "webhooks") == "sealion:metrics:counter:webhooks"
