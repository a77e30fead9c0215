"""Screening: the block list and the per-person rate limit, before anything reads a message.

A turn is screened once, when it is taken: one script decides every message
(`storage.abuse.AbuseScreen`). Messages of blocked people, and those over the rate limit, are
held back: they never reach the model, and none of their text is read (no language detection,
no command). A resumed turn is screened against the block list only: its messages spent their
tokens when first taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.kernel.messages import InboundMessage
from bot.kernel.texts import Text, text
from storage.abuse import AbuseScreen, Verdict, person_of
from storage.metrics import RedisMetrics
from workers.protocol import Held
from workers.turn.budget import MonthlyBudget


@dataclass(frozen=True)
class Screened:
    """The messages of a turn after the block list and the rate limit."""

    allowed: tuple[InboundMessage, ...] = ()
    blocked: tuple[InboundMessage, ...] = ()
    limited: tuple[InboundMessage, ...] = ()
    #: Tell the person to slow down (at most once a rate-limit window).
    notify_limited: bool = False
    #: Every message passes (no screen configured).
    all_allowed: bool = field(default=False, repr=False)
    #: Held: the monthly message budget is spent (`workers.turn.budget`).
    paused: tuple[InboundMessage, ...] = ()
    #: Tell the person the service is paused (once a month).
    notify_paused: bool = False

    @property
    def held(self) -> Held | None:
        """Why the whole turn is held back; None when some message goes on."""
        if self.allowed:
            return None
        if self.paused:
            return Held.PAUSED
        return Held.BLOCKED if self.blocked else Held.RATE_LIMITED

    def notices(self, language: str) -> tuple[str, ...]:
        if self.notify_paused:
            return (text(Text.PAUSED, language),)
        return (text(Text.RATE_LIMITED, language),) if self.notify_limited else ()


class Screening:
    """The screen of a turn (AbuseScreen), counted in `sealion_blocked_messages_total` and
    `sealion_rate_limited_total`."""

    def __init__(self, screen: AbuseScreen | None, metrics: RedisMetrics,
                 budget: MonthlyBudget | None = None) -> None:
        self._screen = screen
        self._metrics = metrics
        self._budget = budget

    def screen(self, messages: Sequence[InboundMessage], *, resumed: bool = False) -> Screened:
        screened = self._abuse(messages, resumed=resumed)
        if screened.allowed and self._budget is not None and not resumed \
                and self._budget.spent(messages[0].key):
            # Nothing more is sent this month: one note to the person, the first time.
            first = self._budget.first_note(messages[0].key, person_of(screened.allowed[0]))
            self._metrics.inc("paused_messages", len(screened.allowed),
                              platform=messages[0].key.platform.value)
            return Screened(blocked=screened.blocked, limited=screened.limited,
                            paused=screened.allowed, notify_paused=first)
        return screened

    def _abuse(self, messages: Sequence[InboundMessage], *, resumed: bool) -> Screened:
        if self._screen is None or not messages:
            return Screened(allowed=tuple(messages), all_allowed=True)
        decided = self._screen.screen(tuple(messages), spend=not resumed)
        sorted_out: dict[Verdict, list[InboundMessage]] = {v: [] for v in Verdict}
        for message, verdict in zip(messages, decided.verdicts, strict=True):
            sorted_out[verdict].append(message)
        screened = Screened(tuple(sorted_out[Verdict.OK]), tuple(sorted_out[Verdict.BLOCKED]),
                            tuple(sorted_out[Verdict.LIMITED]), decided.notify_limited)
        platform = messages[0].key.platform.value
        if screened.blocked:
            self._metrics.inc("blocked_messages", len(screened.blocked), platform=platform)
        if screened.limited:
            self._metrics.inc("rate_limited", len(screened.limited), platform=platform)
        return screened
