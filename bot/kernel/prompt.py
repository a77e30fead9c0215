"""What the model is told (the system prompt with the reply-language instruction) and what is
kept of what it says (reasoning blocks dropped)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.kernel.settings import Settings
from bot.kernel.texts import REPLY_INSTRUCTION

#: Where the README explains why WhatsApp needs BOT_PURPOSE.
PURPOSE_DOCS = "README.md#whatsapp-and-metas-ai-providers-clause"


def system_prompt(base: str, language: str, reference: str = "", purpose: str = "") -> str:
    """The system prompt: the base, the bot's purpose (BOT_PURPOSE) when it has one, the
    knowledge base's passages (`reference_block`) when there are any, and last the
    reply-language instruction in that language."""
    instruction = REPLY_INSTRUCTION.get(language) or REPLY_INSTRUCTION["en"]
    if purpose:
        base = f"{base}\n\n{purpose_instruction(purpose)}"
    if reference:
        return f"{base}\n\n{reference}\n\n{instruction}"
    return f"{base}\n\n{instruction}"


def reference_block(passages: Sequence[tuple[str, str]], *, strict: bool) -> str:
    """The passages (label, text) numbered [1], [2]... with how to use them."""
    rule = ("If they do not contain the answer, say that you do not know; do not use other "
            "knowledge." if strict else
            "If they do not contain the answer, you may answer from general knowledge and "
            "say so.")
    listed = "\n\n".join(f"[{n}] {label}\n{body}"
                           for n, (label, body) in enumerate(passages, start=1))
    return ("Reference passages from the operator's documents. Answer from them. "
            f"{rule} Cite the passages you used as [1], [2].\n\n{listed}")



def purpose_instruction(purpose: str) -> str:
    """What the model is told of BOT_PURPOSE: help with it, and steer anything else back."""
    return (f"You are here for this purpose only: {purpose.strip()}\n"
            "When a request falls outside this purpose, say politely, in the person's "
            "language, that you can only help with this purpose, and offer what you can do "
            "for them within it.")


def purpose_warning(settings: Settings) -> str | None:
    """The warning of a WhatsApp bot without BOT_PURPOSE (shown, never refused), or None."""
    if not settings.whatsapp_enabled or settings.bot_purpose:
        return None
    return ("WhatsApp is on without BOT_PURPOSE: Meta's terms forbid general-purpose AI "
            f"assistants on WhatsApp since 2026-01-15; set what this bot is for (see {PURPOSE_DOCS})")


def clean_reply(raw: str) -> str:
    """Drop reasoning blocks (<think>...</think>, each to its first closing tag) and stray
    whitespace from a model answer. Nothing after an unfinished block is an answer.

    `str.find`, linear in the answer: a lazy `<think>.*?</think>` pattern would rescan the rest
    of the text from every unclosed `<think>`."""
    kept: list[str] = []
    position = 0
    while (start := raw.find("<think>", position)) >= 0:
        end = raw.find("</think>", start + len("<think>"))
        if end < 0:
            break  # unfinished: cut below
        kept.append(raw[position:start])
        position = end + len("</think>")
    kept.append(raw[position:])
    cleaned = "".join(kept)
    return cleaned.split("<think>", 1)[0].strip()
