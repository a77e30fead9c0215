"""The monthly message budget (WHATSAPP_MONTHLY_MESSAGE_BUDGET): WhatsApp charges per message,
so an operator may cap what the bot sends in a calendar month (UTC).

Counting costs nothing extra in round trips: each part sent is counted where it is marked sent
(`ConversationStore.mark_sent` with the month's counter: SET, INCR, EXPIRE in one pipeline).
Checking, when a budget is set, is one GET as the turn is screened: a turn that arrives once the
month's count reached the budget is held (`Held.PAUSED`, never reaches the model), and its
person gets one short note that the service is paused until the month ends (SET NX of their
note marker: once a month); after that, nothing more is sent to them. Parts of an answer
already being sent when the count crosses the budget still go out (at most one answer's parts
over). The console shows the count, and warns from 90 %.
"""

from __future__ import annotations

import time

from bot.kernel.messages import ConversationKey, Platform
from storage.conversations import ConversationStore

#: Platforms whose sent messages are counted per month.
COUNTED = frozenset({Platform.WHATSAPP})
#: The console warns from this share of the budget.
WARN_AT = 0.9


def this_month(now: float | None = None) -> str:
    """The calendar month (UTC) as YYYY-MM."""
    return time.strftime("%Y-%m", time.gmtime(time.time() if now is None else now))


class MonthlyBudget:
    """The month's sent count of a counted platform, and the pause once `budget` is spent
    (0: no limit, counted still)."""

    def __init__(self, store: ConversationStore, budget: int) -> None:
        self._store = store
        self.budget = budget

    def counter(self, key: ConversationKey) -> str | None:
        """The month's count key of the bot `key` is on; None for a platform not counted."""
        if key.platform not in COUNTED:
            return None
        return self._store.keys.sent_month(key.platform, key.bot_id, this_month())

    def spent(self, key: ConversationKey) -> bool:
        """Whether the bot's budget for this month is used up (one GET; none without one)."""
        counter = self.counter(key) if self.budget else None
        return counter is not None and self._store.sent_count(counter) >= self.budget

    def first_note(self, key: ConversationKey, person: str) -> bool:
        """True the first time this month that `person` is told of the pause."""
        marker = self._store.keys.paused_note(key.platform, key.bot_id, this_month(), person)
        return self._store.first_time(marker)
