"""Planning a turn: its commands, its reply language, its notices and the person's words for the
model.

A *turn* is every message that waited while the previous answer was being written (often just
one; an album is several). `plan_turn` reads them in order, free of I/O: commands act and leave a
notice, what the bot cannot read leaves a notice, and every text and photo joins one user turn
for the model. `plan_held_turn` plans a turn the screen held back whole without reading any of
its text. `Planner` is the stage: it asks the platform for a first contact's language (LINE) and
acts on the commands (/reset forgets the history, /lang pins the reply language).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from adapters.base import BaseAdapter
from bot.kernel.commands import Command, parse_command
from bot.kernel.handoff_words import Intent, handoff_intent
from bot.kernel.language import choose_reply_language
from bot.kernel.languages import LANGUAGE_NAMES, SUPPORTED_LANGUAGES, normalise, normalise_language
from bot.kernel.logs import pseudonym
from bot.kernel.messages import Attachment, ConversationKey, InboundMessage, MessageKind
from bot.kernel.texts import Text, text
from storage.conversations import ConversationStore
from storage.handoff import HandoffStore
from storage.history import RedisHistory
from workers.faults import FaultInjector
from workers.protocol import Handoff, TurnPlan

log = logging.getLogger(__name__)

#: A /lang choice outlives the history: people expect it to stick.
PIN_TTL_SECONDS = 365 * 24 * 3600


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
    handoff: Handoff | None = None
    confirm = False
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
        elif command == Command.HUMAN:
            handoff = Handoff.REQUESTED
        else:
            if message.text:
                user_texts.append(message.text)
                intent = handoff_intent(message.text) if message.kind == MessageKind.CHAT \
                    else None
                if intent is Intent.SURE:
                    handoff = Handoff.REQUESTED
                confirm = confirm or intent is Intent.UNSURE
            attachments.extend(message.attachments)
    if handoff is not None:  # a person answers: the bot says so, once, and nothing else
        notices.append(text(Text.HANDOFF_STARTED, language))
    elif confirm:
        notices.append(text(Text.HANDOFF_CONFIRM, language))
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
        handoff=handoff,
    )


def plan_held_turn(turn_id: str, messages: list[InboundMessage], *,
                   current_language: str | None, default_language: str,
                   pinned: str | None = None) -> TurnPlan:
    """The plan of a turn the abuse screen holds back whole (a blocked or rate-limited
    sender): its address and message ids, no text, and a language for the notice from what
    is known already (the pin, the conversation's language, the platform's hint, the default).

    None of the messages' text is read: no command is parsed and no language detected, so a
    held-back message costs no text work, however it is written."""
    assert messages, "a turn has at least one message"
    last = messages[-1]
    hint = next((m.language_hint for m in reversed(messages) if m.language_hint), None)
    language = (normalise_language(pinned) or normalise(current_language)
                or normalise_language(hint) or default_language)
    return TurnPlan(turn_id=turn_id, key=last.key, language=language,
                    in_reply_to=last.message_id, reply_context=last.reply_context,
                    message_ids=tuple(m.message_id for m in messages),
                    received_at=min(m.received_at for m in messages))


def _lang_notice(argument: str, language: str) -> str:
    choice = argument.split()[0].lower() if argument.split() else ""
    if choice == "auto":
        return text(Text.LANG_AUTO, language)
    code = normalise_language(choice)
    if code is None:
        return text(Text.LANG_UNKNOWN, language, codes=", ".join(SUPPORTED_LANGUAGES))
    return text(Text.LANG_SET, code, language=LANGUAGE_NAMES[code])


class Planner:
    """The planning stage: plans (reading the platform's idea of a new person's language when
    the messages carry none), and acts on the turn's commands."""

    def __init__(self, *, default_language: str, adapters: Callable[[Any], BaseAdapter],
                 run: Callable[[Coroutine[Any, Any, Any]], Any], store: ConversationStore,
                 history: RedisHistory, faults: FaultInjector,
                 handoffs: HandoffStore | None = None,
                 notify: Callable[[str, str], Any] | None = None) -> None:
        self._default = default_language
        self._handoffs = handoffs
        self._notify = notify
        self._adapter = adapters
        self._run = run
        self._store = store
        self._history = history
        self._faults = faults

    def plan(self, turn_id: str, messages: list[InboundMessage], *, language: str | None,
             pin: str | None) -> TurnPlan:
        """The plan of `messages`, given the conversation's current `language` and /lang
        `pin` (read with the turn's start)."""
        self._faults.check("prepare", " ".join(m.text for m in messages))
        key = messages[-1].key
        if language is None and not any(m.language_hint for m in messages):
            # First contact on a platform whose messages carry no language (LINE): ask it.
            try:
                hint = self._run(self._adapter(key.platform).language_hint(key))
            except Exception as exc:
                log.info("language hint unavailable: %s", type(exc).__name__)
                hint = None
            if hint:
                messages = [m.model_copy(update={"language_hint": hint}) for m in messages]
        plan = plan_turn(turn_id, messages, current_language=language,
                         default_language=self._default, pinned=pin)
        log.info("turn %s: %d message(s), language %s", plan.turn_id, len(messages),
                 plan.language, extra={"conversation": key.log_id(), "turn": plan.turn_id,
                                       "message_ids": [pseudonym(m) for m in plan.message_ids]})
        return plan

    def plan_held(self, turn_id: str, messages: list[InboundMessage], *, language: str | None,
                  pin: str | None) -> TurnPlan:
        return plan_held_turn(turn_id, messages, current_language=language,
                              default_language=self._default, pinned=pin)

    def claim_handoff_notice(self, key: ConversationKey) -> bool:
        """Whether this turn tells the person a person will reply (once a hold)."""
        return self._handoffs is not None and self._handoffs.claim_notice(key)

    def apply_commands(self, plan: TurnPlan) -> None:
        """/reset forgets the history; /lang pins or releases the reply language; /human (or a
        sure request in words) holds the conversation for a person (already told: this turn
        carries the notice)."""
        if plan.handoff is Handoff.REQUESTED and self._handoffs is not None:
            hold = self._handoffs.start(plan.key, by="person", turn=plan.turn_id, notified=True)
            if hold.turn == plan.turn_id and self._notify is not None:  # a new hold
                self._notify(plan.key.platform.value, plan.language)
        if plan.reset:
            self._history.clear(plan.key)
        if plan.pin is not None:
            self._store.pin_language(plan.key, None if plan.pin == "auto" else plan.pin,
                                     PIN_TTL_SECONDS)
