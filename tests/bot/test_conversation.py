"""Turn planning, commands and reply clean-up."""

from __future__ import annotations

from bot.kernel.commands import Command, parse_command
from bot.kernel.messages import Attachment, ConversationKey, InboundMessage, MessageKind, Platform
from bot.kernel.prompt import clean_reply, system_prompt
from bot.kernel.texts import REPLY_INSTRUCTION, Text, text
from workers.turn.planning import plan_turn

KEY = ConversationKey(platform=Platform.TELEGRAM, bot_id="1", chat_id="2", user_id="2")


def msg(n: int, body: str = "", **kw) -> InboundMessage:
    return InboundMessage(key=KEY, event_id=str(n), message_id=str(n), text=body, **kw)


def test_parse_command():
    assert parse_command("/reset") == (Command.RESET, "")
    assert parse_command("/HELP me") == (Command.HELP, "me")
    assert parse_command("/unknown thing") == (None, "/unknown thing")
    assert parse_command("hello /reset") == (None, "hello /reset")


def test_messages_join_one_user_turn_in_order():
    plan = plan_turn("t", [msg(1, "Selamat pagi, saya mau tanya harga beras hari ini"),
                           msg(2, "yang di pasar Jakarta",
                               attachments=(Attachment(ref="f1"),))],
                     current_language=None, default_language="en")
    assert plan.user_text == ("Selamat pagi, saya mau tanya harga beras hari ini\n"
                              "yang di pasar Jakarta")
    assert [a.ref for a in plan.attachments] == ["f1"]
    assert plan.in_reply_to == "2" and plan.message_ids == ("1", "2")
    assert plan.language == "id" and plan.needs_model


def test_reset_drops_what_came_before_it_in_the_turn():
    plan = plan_turn("t", [msg(1, "old question"), msg(2, "/reset"), msg(3, "ขอบคุณครับ")],
                     current_language="en", default_language="en")
    assert plan.reset and plan.user_text == "ขอบคุณครับ"
    assert plan.language == "th"
    assert plan.notices == (text(Text.RESET_DONE, "th"),)


def test_commands_and_unsupported_only_need_no_model():
    plan = plan_turn("t", [msg(1, "/help", language_hint="vi"),
                           msg(2, kind=MessageKind.UNSUPPORTED, language_hint="vi")],
                     current_language=None, default_language="en")
    assert not plan.needs_model
    assert plan.notices == (text(Text.HELP, "vi"), text(Text.UNSUPPORTED, "vi"))


def test_photo_without_caption_keeps_the_conversation_language():
    plan = plan_turn("t", [msg(1, attachments=(Attachment(ref="f"),), language_hint="en")],
                     current_language="ms", default_language="en")
    assert plan.language == "ms"
    plan = plan_turn("t", [msg(1, attachments=(Attachment(ref="f"),), language_hint="tl")],
                     current_language=None, default_language="en")
    assert plan.language == "tl"


def test_system_prompt_carries_the_instruction_in_the_target_language():
    assert system_prompt("Base.", "th").endswith(REPLY_INSTRUCTION["th"])
    assert system_prompt("Base.", "xx").endswith(REPLY_INSTRUCTION["en"])


def test_clean_reply():
    assert clean_reply("<think>hmm</think>\n\nJawapan.") == "Jawapan."
    assert clean_reply("  Hello  ") == "Hello"
    assert clean_reply("Partial <think>never closed") == "Partial"


def test_lang_pins_and_releases_the_reply_language():
    from bot.kernel.languages import LANGUAGE_NAMES, SUPPORTED_LANGUAGES

    plan = plan_turn("t", [msg(1, "/lang th"), msg(2, "What should I eat in Bangkok today?")],
                     current_language="en", default_language="en")
    assert plan.pin == "th" and plan.language == "th"
    assert plan.notices == (text(Text.LANG_SET, "th", language=LANGUAGE_NAMES["th"]),)
    # a pinned conversation ignores detection
    plan = plan_turn("t", [msg(1, "What should I eat in Bangkok today?")],
                     current_language="th", default_language="en", pinned="th")
    assert plan.language == "th" and plan.pin is None
    plan = plan_turn("t", [msg(1, "/lang auto")], current_language="th", default_language="en",
                     pinned="th")
    assert plan.pin == "auto" and plan.notices == (text(Text.LANG_AUTO, "th"),)
    plan = plan_turn("t", [msg(1, "/lang klingon")], current_language="ms",
                     default_language="en")
    assert plan.pin is None
    assert plan.notices == (text(Text.LANG_UNKNOWN, "ms", codes=", ".join(SUPPORTED_LANGUAGES)),)
