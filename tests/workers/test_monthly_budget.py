"""The WhatsApp monthly message budget (workers/turn/budget.py) through the turn service on the
in-memory twin: every part sent is counted in the month's counter; once the count reaches
WHATSAPP_MONTHLY_MESSAGE_BUDGET a person's turn is held, they get one short note in their
language, and nothing more; other platforms are never counted; an answer that fits in one
WhatsApp message is one message."""

from __future__ import annotations

import time

from adapters.whatsapp import WhatsAppAdapter
from bot.kernel.messages import ConversationKey, InboundMessage, Platform, Reply, WhatsAppContext
from bot.kernel.settings import Settings
from bot.kernel.texts import Text, text
from storage.keys import KeyBuilder
from tests.helpers.turn_world import TurnWorld
from workers.turn.budget import this_month

KEYS = KeyBuilder()
BOT = "106540352242922"


def counter() -> str:
    return KEYS.sent_month(Platform.WHATSAPP, BOT, this_month())


def whatsapp(world: TurnWorld, person: str, body: str, hint: str = "en") -> ConversationKey:
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id=BOT, chat_id=person,
                          user_id=person)
    n = str(time.monotonic_ns())
    world.accept(InboundMessage(key=key, event_id=f"wamid.{n}", message_id=f"wamid.{n}",
                                text=body, sender_id=person, language_hint=hint,
                                reply_context=WhatsAppContext(to=person,
                                                              message_id=f"wamid.{n}")))
    return key


def test_at_the_budget_each_person_gets_one_note_and_then_nothing(tmp_path):
    world = TurnWorld(None, tmp_path)
    try:
        world.settings = world.settings.model_copy(
            update={"whatsapp_monthly_message_budget": 2})
        service = world.service("One.", "Two.", "Never.")
        world.turn(service, whatsapp(world, "6591110001", "hello"))
        assert world.adapter.sent == ["One."] and world.client.get(counter()) == b"1"
        world.turn(service, whatsapp(world, "6591110001", "again"))
        assert world.adapter.sent == ["One.", "Two."] and world.client.get(counter()) == b"2"
        assert 0 < world.client.ttl(counter()) <= 40 * 86400

        # Spent: the same person gets one note in their conversation's language, then
        # nothing at all (a held turn's text is never read).
        world.turn(service, whatsapp(world, "6591110001", "more?"))
        paused_en = text(Text.PAUSED, "en")
        assert world.adapter.sent[2:] == [paused_en]
        world.turn(service, whatsapp(world, "6591110001", "hello??"))
        assert world.adapter.sent[2:] == [paused_en]  # the turn ended: nothing sent
        # Someone else: their own single note.
        world.turn(service, whatsapp(world, "6591110002", "hi", hint="th"))
        world.turn(service, whatsapp(world, "6591110002", "hi again", hint="th"))
        assert world.adapter.sent[2:] == [paused_en, text(Text.PAUSED, "th")]
        # A Telegram turn is neither counted nor paused.
        key = world.arrive("hi from Telegram")
        world.turn(service, key)
        assert world.adapter.sent[-1] == "Never."
        assert world.client.keys("sealion:sent:telegram:*") == []
    finally:
        world.close()


def test_without_a_budget_messages_are_counted_and_never_paused(tmp_path):
    world = TurnWorld(None, tmp_path)
    try:
        service = world.service("One.", "Two.")
        world.turn(service, whatsapp(world, "6591110003", "hello"))
        world.client.set(counter(), 10_000)
        world.turn(service, whatsapp(world, "6591110003", "again"))
        assert world.adapter.sent == ["One.", "Two."]
        assert world.client.get(counter()) == b"10001"
    finally:
        world.close()


def test_an_answer_that_fits_in_one_whatsapp_message_is_one_message():
    adapter = WhatsAppAdapter(Settings(
        _env_file=None, whatsapp_access_token="t", whatsapp_app_secret="s",
        whatsapp_phone_number_id=BOT))
    key = ConversationKey(platform=Platform.WHATSAPP, bot_id=BOT, chat_id="1", user_id="1")
    for answer in ("a" * 4096, ("word " * 819).strip(), "line\n\n" * 682):
        parts = adapter.parts(Reply(key=key, in_reply_to="m", language="en", text=answer))
        assert len(parts) == 1 and len(parts[0].text) <= 4096, len(answer)
    parts = adapter.parts(Reply(key=key, in_reply_to="m", language="en", text="a" * 4097))
    assert len(parts) == 2
