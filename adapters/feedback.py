"""Feedback on answers, as every adapter reads and shows it: the two buttons' labels and data,
and what a reaction's emoji means as a rating.

A button carries "fb:+1:<turn id>" or "fb:-1:<turn id>" (`bot.kernel.messages.feedback_data`);
a reaction names the message it is on, which the log maps to its answer (`log_answer_parts`).
"""

from __future__ import annotations

from bot.kernel.messages import feedback_data

UP, DOWN = "👍", "👎"

#: Reactions that mean "good answer" (👍 ❤️ and their kin) and "bad answer" (👎 and its kin);
#: any other emoji (🤔, 😮) is no rating at all.
POSITIVE = frozenset({"👍", "❤", "❤️", "🔥", "🥰", "👏", "😍", "🙏", "💯", "🤩", "👌", "🎉",
                      "❤‍🔥", "❤️‍🔥", "🏆", "🤗", "😇", "🆒", "🫡", "😘", "😁", "👍🏻", "👍🏼",
                      "👍🏽", "👍🏾", "👍🏿", "🙏🏻", "🙏🏼", "🙏🏽", "🙏🏾", "🙏🏿", "💖", "💕",
                      "😊", "😀", "😃", "🥳", "✅", "⭐", "🌟", "💚", "💙", "💛", "💜", "🧡"})
NEGATIVE = frozenset({"👎", "👎🏻", "👎🏼", "👎🏽", "👎🏾", "👎🏿", "💩", "🤮", "😡", "🤬", "🖕",
                      "😠", "❌", "💔"})


def reaction_value(emoji: str | None) -> int | None:
    """+1, -1, 0 for a removed reaction (no emoji), None for an emoji that rates nothing."""
    if not emoji:
        return 0
    emoji = emoji.strip()
    if emoji in POSITIVE or emoji.rstrip("\ufe0f") in POSITIVE:
        return 1
    if emoji in NEGATIVE or emoji.rstrip("\ufe0f") in NEGATIVE:
        return -1
    return None


def buttons(turn_id: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two buttons under an answer: (label, data) for 👍 then 👎."""
    return (UP, feedback_data(1, turn_id)), (DOWN, feedback_data(-1, turn_id))


def label(value: int) -> str:
    return UP if value > 0 else DOWN
