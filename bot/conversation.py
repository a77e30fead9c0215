"""The conversation logic, free of I/O: commands, reply language, prompt, reply clean-up.

A *turn* is every message that waited while the previous answer was being written (often just
one; an album is several). `plan_turn` reads them in order: commands act and leave a notice, what
the bot cannot read leaves a notice, and every text and photo joins one user turn for the model.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.language import choose_reply_language
from bot.languages import LANGUAGE_NAMES, SUPPORTED_LANGUAGES, normalise_language
from bot.messages import Attachment, ConversationKey, InboundMessage, MessageKind
from bot.texts import REPLY_INSTRUCTION, Text, text


class Command(StrEnum):
    START = "start"
    HELP = "help"
    RESET = "reset"
    LANG = "lang"


class TurnPlan(BaseModel):
    """What to do for one turn; crosses Celery as JSON, and is kept in Redis by turn id so a
    turn resumed after its worker died starts from it."""

    model_config = ConfigDict(frozen=True)

    turn_id: str
    key: ConversationKey
    language: str
    #: Texts the bot writes itself, sent (in order) before the model's answer.
    notices: tuple[str, ...] = ()
    #: Forget the history before this turn's question (a /reset in the turn).
    reset: bool = False
    #: A /lang in the turn: the language to pin, or "auto" to release the pin.
    pin: str | None = None
    user_text: str = ""
    attachments: tuple[Attachment, ...] = ()
    #: Images of this turn once fetched and stored (history image ids).
    image_ids: tuple[str, ...] = ()
    #: Their thumbnails for the conversation log, made when they were first decoded.
    thumbnail_ids: tuple[str, ...] = ()
    in_reply_to: str = ""
    reply_context: dict = Field(default_factory=dict)
    message_ids: tuple[str, ...] = ()
    #: When the turn's first message reached the webhook (for the time-to-reply metric).
    received_at: float = 0.0
    #: Show the answer while it is generated (where the platform can).
    stream: bool = False
    #: "blocked" or "rate_limited" when the abuse controls held back every message of the turn
    #: (workers.moderation): nothing goes to the model, the log marks the turn.
    held: str = ""
    #: What the person said in this turn's voice notes (None: nothing was spoken); it is part
    #: of `user_text`.
    transcript: str | None = None
    #: The voice notes waiting in Redis (`storage.voice.VoiceNotes`): (slot, MIME type), for
    #: the log when ASR_KEEP_AUDIO keeps them; dropped when the turn is delivered.
    voice_notes: tuple[tuple[int, str], ...] = ()

    @property
    def needs_model(self) -> bool:
        return bool(self.user_text.strip() or self.attachments or self.image_ids)


def parse_command(message_text: str) -> tuple[Command | None, str]:
    if not message_text.startswith("/"):
        return None, message_text
    head, _, rest = message_text.partition(" ")
    try:
        return Command(head[1:].lower()), rest.strip()
    except ValueError:
        return None, message_text  # an unknown /word is ordinary text for the model


def plan_turn(turn_id: str, messages: list[InboundMessage], *, current_language: str | None,
              default_language: str, pinned: str | None = None) -> TurnPlan:
    """Plan one turn. `pinned` is the conversation's /lang choice, which beats detection."""
    assert messages, "a turn has at least one message"
    last = messages[-1]
    # A /lang in this turn changes the pin for the whole turn (the last one wins).
    pin: str | None = None
    for message in messages:
        command, argument = parse_command(message.text)
        if command == Command.LANG:
            choice = argument.split()[0].lower() if argument.split() else ""
            if choice == "auto":
                pin, pinned = "auto", None
            elif normalise_language(choice):
                pin = pinned = normalise_language(choice)
    # The language of what the model will answer: the chat text after the last /reset.
    resets = [i for i, m in enumerate(messages) if parse_command(m.text)[0] == Command.RESET]
    after_reset = messages[resets[-1] + 1:] if resets else messages
    chat_texts = [m.text for m in after_reset
                  if m.kind == MessageKind.CHAT and parse_command(m.text)[0] is None and m.text]
    hint = next((m.language_hint for m in reversed(messages) if m.language_hint), None)
    language = pinned or choose_reply_language(" ".join(chat_texts), current=current_language,
                                               hint=hint, default=default_language)

    notices: list[str] = []
    reset = False
    user_texts: list[str] = []
    attachments: list[Attachment] = []
    for message in messages:
        if message.kind == MessageKind.GREETING:
            notices.append(text(Text.GREETING, language))
            continue
        if message.kind == MessageKind.UNSUPPORTED:
            notices.append(text(Text.UNSUPPORTED, language))
            continue
        command, argument = parse_command(message.text)
        if command in (Command.START, Command.HELP):
            notices.append(text(Text.GREETING if command == Command.START else Text.HELP,
                                language))
        elif command == Command.LANG:
            notices.append(_lang_notice(argument, language))
        elif command == Command.RESET:
            reset = True
            user_texts.clear()
            attachments.clear()
            notices.append(text(Text.RESET_DONE, language))
        else:
            if message.text:
                user_texts.append(message.text)
            attachments.extend(message.attachments)
    return TurnPlan(
        turn_id=turn_id,
        key=last.key,
        language=language,
        notices=tuple(notices),
        reset=reset,
        pin=pin,
        user_text="\n".join(user_texts),
        attachments=tuple(attachments),
        in_reply_to=last.message_id,
        reply_context=last.reply_context,
        message_ids=tuple(m.message_id for m in messages),
        received_at=min(m.received_at for m in messages),
    )


def _lang_notice(argument: str, language: str) -> str:
    choice = argument.split()[0].lower() if argument.split() else ""
    if choice == "auto":
        return text(Text.LANG_AUTO, language)
    code = normalise_language(choice)
    if code is None:
        return text(Text.LANG_UNKNOWN, language, codes=", ".join(SUPPORTED_LANGUAGES))
    return text(Text.LANG_SET, code, language=LANGUAGE_NAMES[code])


def system_prompt(base: str, language: str) -> str:
    """The system prompt, ending with the reply-language instruction in that language."""
    instruction = REPLY_INSTRUCTION.get(language) or REPLY_INSTRUCTION["en"]
    return f"{base}\n\n{instruction}"


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def clean_reply(raw: str) -> str:
    """Drop reasoning blocks and stray whitespace from a model answer."""
    cleaned = _THINK.sub("", raw)
    if "<think>" in cleaned:  # an unfinished reasoning block: nothing after it is an answer
        cleaned = cleaned.split("<think>", 1)[0]
    return cleaned.strip()
