"""The moderation steps of a turn: the guard on both sides of the model, and the abuse controls.

`Moderator` wraps the configured guard (`workers.guards`):

- `check_input(text, images, language)` before generation, `check_output(text, answer, language)`
  after it. Each returns a `GuardDecision` (side, label, categories, latency) that is counted
  (``sealion_guard_decisions_total{side,label}``, ``sealion_guard_seconds{side}``), stored with
  the turn in the conversation log, and says whether the turn is `blocked`.
- A guard that cannot answer gives the label "error": with GUARD_FAIL=closed the turn is
  blocked (the person gets the apology), with "open" it goes through unchecked; both are
  counted in ``sealion_guard_failures_total{side,mode}``.
- `DraftChecker` sits between a streamed answer and its Telegram draft: only text the guard
  found safe is shown, and a flagged draft is cleared (an empty draft) for the rest of the turn.

`AbuseScreen` runs before a turn is planned: the block list, then the per-person rate limit
(`storage.abuse`). Messages it holds back are acknowledged and never reach the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.messages import InboundMessage
from bot.texts import Text, text
from storage.abuse import BlockList, RateDecision, RateLimiter
from workers.guards.base import BaseGuard, GuardError, GuardRequest

log = logging.getLogger(__name__)

__all__ = ["AbuseScreen", "DraftChecker", "GuardDecision", "Moderator", "Screened"]

#: Labels that are not "safe" but are not the content's fault either.
ERROR_LABEL = "error"


@dataclass(frozen=True)
class GuardDecision:
    side: str  # "input" | "output" | "draft"
    label: str  # "safe" | "unsafe" | "controversial" | "error"
    categories: tuple[str, ...] = ()
    latency_ms: int = 0
    #: The turn must not go on: refused (a flagged label) or the guard failed closed.
    blocked: bool = False

    @property
    def failed(self) -> bool:
        return self.label == ERROR_LABEL

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuardDecision:
        return cls(side=str(data["side"]), label=str(data["label"]),
                   categories=tuple(data.get("categories") or ()),
                   latency_ms=int(data.get("latency_ms") or 0),
                   blocked=bool(data.get("blocked")))


class Moderator:
    """The configured guard, GUARD_INPUT/GUARD_OUTPUT, GUARD_FAIL and the refusal text."""

    def __init__(self, guard: BaseGuard | None, *, check_input: bool = True,
                 check_output: bool = True, fail: str = "closed",
                 block_controversial: bool = False, blocked_reply: str | None = None,
                 metrics: Any = None) -> None:
        self.guard = guard
        self.input_on = guard is not None and check_input
        self.output_on = guard is not None and check_output
        self.fail = fail
        self.block_controversial = block_controversial
        self.blocked_reply = blocked_reply
        self.metrics = metrics

    @classmethod
    def from_settings(cls, settings: Any, guard: BaseGuard | None,
                      metrics: Any = None) -> Moderator:
        return cls(guard, check_input=settings.guard_input, check_output=settings.guard_output,
                   fail=settings.guard_fail,
                   block_controversial=settings.guard_block_controversial,
                   blocked_reply=settings.guard_blocked_reply, metrics=metrics)

    def refusal(self, language: str) -> str:
        """What a person gets instead of a flagged message's answer or a flagged answer."""
        return self.blocked_reply or text(Text.GUARD_REFUSAL, language)

    def check_input(self, prompt: str, images: Sequence[bytes] = (),
                    language: str | None = None) -> GuardDecision | None:
        if not self.input_on:
            return None
        return self._check("input", GuardRequest(prompt, tuple(images), None, language))

    def check_output(self, prompt: str, answer: str, language: str | None = None,
                     side: str = "output") -> GuardDecision | None:
        if not self.output_on or not answer.strip():
            return None
        return self._check(side, GuardRequest(prompt, (), answer, language))

    def _check(self, side: str, request: GuardRequest) -> GuardDecision:
        assert self.guard is not None
        started = time.perf_counter()
        try:
            verdict = self.guard.check(request)
        except GuardError as exc:
            seconds = time.perf_counter() - started
            log.warning("guard (%s) gave no verdict: %s; failing %s", side, exc, self.fail)
            self._count("guard_failures", side=side, mode=self.fail)
            decision = GuardDecision(side, ERROR_LABEL, (), round(seconds * 1000),
                                     blocked=self.fail == "closed")
        else:
            seconds = time.perf_counter() - started
            blocked = verdict.label == "unsafe" or (
                verdict.label == "controversial" and self.block_controversial)
            decision = GuardDecision(side, verdict.label, verdict.categories,
                                     round(seconds * 1000), blocked=blocked)
        self._count("guard_decisions", side=side, label=decision.label)
        if self.metrics is not None:
            self.metrics.observe("guard_seconds", seconds, side=side)
        if decision.blocked:
            log.info("guard (%s): %s %s", side, decision.label, ",".join(decision.categories))
        return decision

    def _count(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, **labels)


class DraftChecker:
    """Shows a streamed answer only as far as the guard has found it safe.

    `offer(text)` is called with the answer so far (from the generating thread, often); a
    background thread checks the newest text whenever it is free and hands safe text to
    `publish`. Once a draft is flagged, `publish("")` clears it and nothing more is shown;
    `flagged` tells the caller. `close()` stops the thread.
    """

    def __init__(self, moderator: Moderator, prompt: str, language: str | None,
                 publish: Callable[[str], None]) -> None:
        self._moderator = moderator
        self._prompt = prompt
        self._language = language
        self._publish = publish
        self._latest = ""
        self._checked = ""
        self._cond = threading.Condition()
        self._closed = False
        self.flagged = False
        self.decisions: list[GuardDecision] = []
        self._thread = threading.Thread(target=self._run, name="draft-guard", daemon=True)
        self._thread.start()

    def offer(self, draft: str) -> None:
        with self._cond:
            self._latest = draft
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._latest != self._checked)
                if self._closed or self.flagged:
                    return
                draft = self._checked = self._latest
            decision = self._moderator.check_output(self._prompt, draft, self._language,
                                                    side="draft")
            if decision is not None:
                self.decisions.append(decision)
            if decision is not None and decision.blocked:
                self.flagged = True
                self._safe_publish("")
                return
            self._safe_publish(draft)

    def _safe_publish(self, draft: str) -> None:
        try:
            self._publish(draft)
        except Exception:  # a draft is a courtesy: never fail the answer for it
            log.debug("draft not published", exc_info=True)


@dataclass
class Screened:
    """The messages of a turn after the block list and the rate limit."""

    allowed: list[InboundMessage] = field(default_factory=list)
    blocked: list[InboundMessage] = field(default_factory=list)
    limited: list[InboundMessage] = field(default_factory=list)
    #: Send the "please slow down" notice (the first refusal in the person's window).
    notify_limited: bool = False


class AbuseScreen:
    """The block list and the per-person rate limit, applied to a turn's messages in order.

    The rate decision of a message is made once (by its event id): screening the same messages
    again gives the same answer and spends nothing. Counting is the caller's (once a turn)."""

    def __init__(self, blocklist: BlockList, limiter: RateLimiter) -> None:
        self.blocklist = blocklist
        self.limiter = limiter

    def screen(self, messages: Sequence[InboundMessage]) -> Screened:
        out = Screened()
        for message in messages:
            try:
                if self.blocklist.blocks(message):
                    out.blocked.append(message)
                    continue
                decision = self.limiter.check(message)
            except Exception as exc:  # Redis trouble: let the message through, not lose it
                log.warning("abuse screen skipped: %s", type(exc).__name__)
                out.allowed.append(message)
                continue
            if decision.allowed:
                out.allowed.append(message)
            else:
                out.limited.append(message)
                out.notify_limited |= decision is RateDecision.LIMITED_NOTICE
        return out
