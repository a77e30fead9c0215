"""The commands a person can type: /start, /help, /reset, /lang xx, /human (any other /word is
text)."""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    START = "start"
    HELP = "help"
    RESET = "reset"
    LANG = "lang"
    #: Ask for a person of the team (storage/handoff.py): the bot stays quiet meanwhile.
    HUMAN = "human"


def parse_command(message_text: str) -> tuple[Command | None, str]:
    if not message_text.startswith("/"):
        return None, message_text
    head, _, rest = message_text.partition(" ")
    try:
        return Command(head[1:].lower()), rest.strip()
    except ValueError:
        return None, message_text  # an unknown /word is ordinary text for the model
